package metaapi

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateBucketName(t *testing.T) {
	good := []string{"abc", "my-bucket", "my.bucket.name", "a1b", strings.Repeat("a", 63), "1.2.3"}
	bad := []string{"", "ab", strings.Repeat("a", 64), "ABC", "a_b", "-ab", "ab-", ".ab", "ab.", "a..b", "a.-b", "a-.b", "10.1.2.3", "a b", "bücket"}
	for _, n := range good {
		if err := ValidateBucketName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range bad {
		if err := ValidateBucketName(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("%q: got %v, want ErrInvalidName", n, err)
		}
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"a", "dir/file.txt", strings.Repeat("k", MaxKeyLen), "ünïcödé/🙂"} {
		if err := ValidateKey(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
	for _, k := range []string{"", strings.Repeat("k", MaxKeyLen+1), "bad\xff"} {
		if err := ValidateKey(k); !errors.Is(err, ErrInvalidName) {
			t.Errorf("%q: got %v, want ErrInvalidName", k, err)
		}
	}
}

func TestErrorCodesRoundTrip(t *testing.T) {
	for _, c := range codes {
		code, status := CodeOf(c.err)
		if code != c.code || status != c.status || errorFor(code) != c.err {
			t.Errorf("%v: code %s status %d", c.err, code, status)
		}
	}
	if code, status := CodeOf(errors.New("boom")); code != "Internal" || status != 500 {
		t.Errorf("unknown error: %s %d", code, status)
	}
}
