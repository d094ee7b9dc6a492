package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Workload is what a run does.
type Workload string

// The workloads.
const (
	// WorkloadPut stores new objects.
	WorkloadPut Workload = "put"
	// WorkloadGet reads prefilled objects at random.
	WorkloadGet Workload = "get"
	// WorkloadMixed interleaves gets, puts, deletes and stats by Mix.
	WorkloadMixed Workload = "mixed"
	// WorkloadList pages through the listing of prefilled objects.
	WorkloadList Workload = "list"
	// WorkloadDelete deletes prefilled objects until none are left.
	WorkloadDelete Workload = "delete"
)

// Workloads lists every workload.
func Workloads() []Workload {
	return []Workload{WorkloadPut, WorkloadGet, WorkloadMixed, WorkloadList, WorkloadDelete}
}

// op is one kind of request.
type op int

const (
	opPut op = iota
	opGet
	opDelete
	opStat
	opList
	numOps
)

var opNames = [numOps]string{"put", "get", "delete", "stat", "list"}

func (o op) String() string { return opNames[o] }

// Mix weighs the operations of the mixed workload: each operation is a get
// with probability Get/(Get+Put+Delete+Stat), and so on. The zero Mix means
// DefaultMix.
type Mix struct {
	Get, Put, Delete, Stat int
}

// DefaultMix is the mixed workload's default: 45% gets, 15% puts, 10%
// deletes, 30% stats (that of MinIO's warp, so results compare).
func DefaultMix() Mix { return Mix{Get: 45, Put: 15, Delete: 10, Stat: 30} }

// ParseMix parses weights given in the order get:put:delete:stat
// ("45:15:10:30") or by name ("get=60,put=40"; names left out weigh 0).
func ParseMix(s string) (Mix, error) {
	var m Mix
	fields := []*int{&m.Get, &m.Put, &m.Delete, &m.Stat}
	bad := func(why string) (Mix, error) {
		return Mix{}, fmt.Errorf("mix %q: %s; want get:put:delete:stat weights such as 45:15:10:30, or get=45,put=15,...", s, why)
	}
	if strings.Contains(s, "=") {
		for _, part := range strings.Split(s, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			j := slices.Index([]string{"get", "put", "delete", "stat"}, strings.ToLower(strings.TrimSpace(name)))
			if j < 0 {
				return bad(fmt.Sprintf("%q is not get, put, delete or stat", name))
			}
			n, err := strconv.Atoi(strings.TrimSpace(val))
			if err != nil || n < 0 {
				return bad(fmt.Sprintf("weight %q is not a non-negative integer", val))
			}
			*fields[j] = n
		}
	} else {
		parts := strings.Split(s, ":")
		if len(parts) != 4 {
			return bad("need four weights")
		}
		for j, p := range parts {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n < 0 {
				return bad(fmt.Sprintf("weight %q is not a non-negative integer", p))
			}
			*fields[j] = n
		}
	}
	if m.total() == 0 {
		return bad("the weights add up to zero")
	}
	return m, nil
}

func (m Mix) total() int { return m.Get + m.Put + m.Delete + m.Stat }

// String formats m the way ParseMix reads it.
func (m Mix) String() string {
	return fmt.Sprintf("get=%d,put=%d,delete=%d,stat=%d", m.Get, m.Put, m.Delete, m.Stat)
}

// pick maps r in [0, total) to an operation.
func (m Mix) pick(r int) op {
	switch {
	case r < m.Get:
		return opGet
	case r < m.Get+m.Put:
		return opPut
	case r < m.Get+m.Put+m.Delete:
		return opDelete
	}
	return opStat
}
