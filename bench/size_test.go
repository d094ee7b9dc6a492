package bench

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"4096", 4096},
		{"4096B", 4096},
		{"4KiB", 4 << 10},
		{"4kib", 4 << 10},
		{"4 KiB", 4 << 10},
		{"64MiB", 64 << 20},
		{"2GiB", 2 << 30},
		{"1TiB", 1 << 40},
		{"4KB", 4000},
		{"10MB", 10_000_000},
		{"3GB", 3_000_000_000},
		{"1.5MiB", 3 << 19},
		{"0.5KB", 500},
		{" 7 ", 7},
	} {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "KiB", "4XB", "4 K", "-1", "1.2.3MB", "9223372036854775807KiB", "1e3", "4KiBs"} {
		if got, err := ParseSize(in); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("ParseSize(%q) = %d, %v; want ErrInvalidSize", in, got, err)
		}
	}
}

func TestParseSizes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Sizes
	}{
		{"4KiB", Sizes{4 << 10, 4 << 10}},
		{"1KiB-64MiB", Sizes{1 << 10, 64 << 20}},
		{"1000-1KB", Sizes{1000, 1000}},
		{"0-100", Sizes{0, 100}},
	} {
		got, err := ParseSizes(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSizes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, err := ParseSizes(got.String()); err != nil || back != got {
			t.Errorf("ParseSizes(%q.String() = %q) = %v, %v", tc.in, got.String(), back, err)
		}
	}
	for _, in := range []string{"64MiB-1KiB", "1KiB-", "-1KiB", "1-2-3", "x-1"} {
		if got, err := ParseSizes(in); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("ParseSizes(%q) = %v, %v; want ErrInvalidSize", in, got, err)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1: "1B", 1023: "1023B", 1024: "1KiB", 1536: "1536B",
		3 << 20: "3MiB", 5 << 30: "5GiB", 1 << 40: "1TiB", 4000: "4000B"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", n, back, err)
		}
	}
}

// TestSizesDraw checks that a range draws within its bounds, log-uniformly:
// each of the range's 16 powers of two gets about 1/16 of the draws, and the
// mean agrees with Mean.
func TestSizesDraw(t *testing.T) {
	s := Sizes{1 << 10, 64 << 20}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 200_000
	var octaves [16]int
	var sum float64
	for range n {
		v := s.draw(r)
		if v < s.Min || v > s.Max {
			t.Fatalf("drew %d outside %v", v, s)
		}
		octaves[min(int(math.Log2(float64(v+1)/float64(s.Min+1))), 15)]++
		sum += float64(v)
	}
	for i, c := range octaves {
		// Binomial(n, 1/16) has a standard deviation of 108; 6 of them.
		if math.Abs(float64(c)-n/16) > 650 {
			t.Errorf("octave %d got %d draws, want about %d", i, c, n/16)
		}
	}
	if mean := sum / n; math.Abs(mean-s.Mean())/s.Mean() > 0.02 {
		t.Errorf("mean of draws %.0f, Mean() %.0f", mean, s.Mean())
	}
	if got := (Sizes{7, 7}).draw(r); got != 7 {
		t.Errorf("fixed size drew %d", got)
	}
	for range 1000 {
		if v := (Sizes{0, 3}).draw(r); v < 0 || v > 3 {
			t.Fatalf("Sizes{0, 3} drew %d", v)
		}
	}
}
