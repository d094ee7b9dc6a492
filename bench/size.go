package bench

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// ErrInvalidSize is returned, wrapped, for a size or size range that does not
// parse.
var ErrInvalidSize = errors.New("invalid size")

// units maps a lower-cased suffix to its multiplier. Both the binary (KiB)
// and the decimal (KB) spellings are accepted because people type both and
// mean different things.
var units = map[string]int64{
	"":    1,
	"b":   1,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
}

// ParseSize parses a byte count: plain bytes ("4096") or a number with one of
// the suffixes B, KiB, MiB, GiB, TiB, KB, MB, GB, TB (case-insensitive; a
// space before the suffix and a fraction such as "1.5MiB" are allowed).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult, ok := units[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("size %q: %w: want bytes or a number with B, KiB, MiB, GiB, KB, MB or GB", s, ErrInvalidSize)
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("size %q: %w: too large", s, ErrInvalidSize)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, ErrInvalidSize)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: %w: too large", s, ErrInvalidSize)
	}
	return int64(v), nil
}

// Sizes is a distribution of object sizes: the fixed size Min when Min ==
// Max, otherwise log-uniform over [Min, Max], so that every power of two in
// the range is drawn about equally often. (Uniform draws over 1KiB-64MiB
// would make nearly every object tens of MiB.)
type Sizes struct {
	Min, Max int64
}

// ParseSizes parses a size ("4KiB") or an inclusive range ("1KiB-64MiB").
func ParseSizes(s string) (Sizes, error) {
	first, second, isRange := strings.Cut(s, "-")
	lo, err := ParseSize(first)
	if err != nil {
		return Sizes{}, err
	}
	if !isRange {
		return Sizes{lo, lo}, nil
	}
	hi, err := ParseSize(second)
	if err != nil {
		return Sizes{}, err
	}
	if hi < lo {
		return Sizes{}, fmt.Errorf("size range %q: %w: the upper bound is below the lower", s, ErrInvalidSize)
	}
	return Sizes{lo, hi}, nil
}

// Fixed reports whether every object has the same size.
func (s Sizes) Fixed() bool { return s.Min == s.Max }

// Mean is the expected object size.
func (s Sizes) Mean() float64 {
	if s.Fixed() {
		return float64(s.Min)
	}
	// Log-uniform over [a, b] (the sizes shifted by one, see draw) has mean
	// (b-a) / ln(b/a).
	a, b := float64(s.Min+1), float64(s.Max+1)
	return (b-a)/math.Log(b/a) - 1
}

// draw returns a size from the distribution.
func (s Sizes) draw(r *rand.Rand) int64 {
	if s.Fixed() {
		return s.Min
	}
	// Shift by one so that a range starting at 0 bytes stays defined.
	la, lb := math.Log(float64(s.Min+1)), math.Log(float64(s.Max+1))
	n := int64(math.Exp(la+r.Float64()*(lb-la))) - 1
	return min(max(n, s.Min), s.Max)
}

// String formats s the way ParseSizes reads it.
func (s Sizes) String() string {
	if s.Fixed() {
		return FormatSize(s.Min)
	}
	return FormatSize(s.Min) + "-" + FormatSize(s.Max)
}

// FormatSize formats a byte count with the largest binary unit that divides
// it, so that ParseSize(FormatSize(n)) == n.
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
