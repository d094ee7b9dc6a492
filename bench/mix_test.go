package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/talusfs/talus/meta/metaapi"
)

func TestParseMix(t *testing.T) {
	for in, want := range map[string]Mix{
		"45:15:10:30":                     {45, 15, 10, 30},
		"1:0:0:0":                         {Get: 1},
		"get=70,put=30":                   {Get: 70, Put: 30},
		"put=1, delete=2 ,STAT=3":         {Put: 1, Delete: 2, Stat: 3},
		"get=45,put=15,delete=10,stat=30": DefaultMix(),
	} {
		got, err := ParseMix(in)
		if err != nil || got != want {
			t.Errorf("ParseMix(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := ParseMix(got.String()); err != nil || back != got {
			t.Errorf("ParseMix(%q) does not read back %q: %v, %v", in, got.String(), back, err)
		}
	}
	for _, in := range []string{"", "1:2:3", "1:2:3:4:5", "0:0:0:0", "a:b:c:d", "-1:2:3:4", "get=1,list=2", "get=x", "get=0"} {
		if got, err := ParseMix(in); err == nil {
			t.Errorf("ParseMix(%q) = %v, want an error", in, got)
		}
	}
}

func TestMixPick(t *testing.T) {
	m := Mix{Get: 3, Put: 2, Delete: 0, Stat: 1}
	var got [numOps]int
	for r := range m.total() {
		got[m.pick(r)]++
	}
	if got[opGet] != 3 || got[opPut] != 2 || got[opDelete] != 0 || got[opStat] != 1 {
		t.Errorf("picks %v, want get 3, put 2, delete 0, stat 1", got)
	}
}

func TestErrorKind(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, refused := net.DialTimeout("tcp", addr, time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()

	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("get b/k: %w", minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}), "NoSuchKey"},
		{fmt.Errorf("put b/k: %w", minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}), "SlowDown"},
		{fmt.Errorf("head b/k: %w", metaapi.ErrNoSuchKey), "NoSuchKey"},
		{fmt.Errorf("put b/k: %w", metaapi.ErrNotEnoughServers), "NotEnoughServers"},
		{fmt.Errorf("get: %w", ErrWrongSize), "WrongSize"},
		{fmt.Errorf("put: %w", ctx.Err()), "Timeout"},
		{fmt.Errorf("dial: %w", refused), "ConnRefused"},
		{errors.New("something else"), "Other"},
	} {
		if got := ErrorKind(tc.err); got != tc.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestProgressString(t *testing.T) {
	p := Progress{Phase: "prefill", Elapsed: 2600 * time.Millisecond, Done: 10, Total: 40, OpsPerSec: 1234.4, MiBPerSec: 4.82, Errors: 1}
	want := "prefill    3s      1234 ops/s      4.82 MiB/s      1 errors  10/40"
	if got := p.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
