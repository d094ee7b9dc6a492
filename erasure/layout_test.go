package erasure_test

import (
	"errors"
	"testing"

	"github.com/talusfs/talus/erasure"
)

func TestLayoutValidate(t *testing.T) {
	good := []erasure.Layout{
		{K: 1, M: 0, BlockSize: 1},
		{K: 4, M: 2, BlockSize: erasure.DefaultBlockSize},
		{K: 200, M: 56, BlockSize: erasure.MaxBlockSize},
	}
	for _, l := range good {
		if err := l.Validate(); err != nil {
			t.Errorf("%v: %v", l, err)
		}
	}
	bad := []erasure.Layout{
		{K: 0, M: 2, BlockSize: 1024},
		{K: 4, M: -1, BlockSize: 1024},
		{K: 200, M: 57, BlockSize: 1024},
		{K: 4, M: 2, BlockSize: 0},
		{K: 4, M: 2, BlockSize: erasure.MaxBlockSize + 1},
	}
	for _, l := range bad {
		if err := l.Validate(); !errors.Is(err, erasure.ErrInvalidLayout) {
			t.Errorf("%v: got %v, want ErrInvalidLayout", l, err)
		}
	}
}

func TestShardSize(t *testing.T) {
	l := erasure.Layout{K: 4, M: 2, BlockSize: 100}
	for _, tc := range []struct{ seg, want int64 }{
		{0, 0},
		{1, 1},
		{4, 1},
		{5, 2},
		{399, 100},
		{400, 100},
		{401, 101},
		{1203, 301},
		{-5, 0},
	} {
		if got := l.ShardSize(tc.seg); got != tc.want {
			t.Errorf("ShardSize(%d) = %d, want %d", tc.seg, got, tc.want)
		}
	}
	if got := l.StripeSize(); got != 400 {
		t.Errorf("StripeSize = %d, want 400", got)
	}
}
