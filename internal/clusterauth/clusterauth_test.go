package clusterauth

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var secret = []byte("s3cret")

func newReq(t *testing.T, method, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSignVerify(t *testing.T) {
	r := newReq(t, "PUT", "http://h:1/v1/shards/abc.1?x=1&y=%2F")
	Sign(r, secret)
	if err := Verify(r, secret, time.Now()); err != nil {
		t.Fatalf("verify signed request: %v", err)
	}
	// Within the allowed skew on both sides.
	for _, d := range []time.Duration{-MaxSkew + time.Second, MaxSkew - time.Second} {
		if err := Verify(r, secret, time.Now().Add(d)); err != nil {
			t.Errorf("verify at skew %s: %v", d, err)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	signed := func() *http.Request {
		r := newReq(t, "GET", "http://h:1/v1/shards/abc.1?offset=0")
		Sign(r, secret)
		return r
	}
	cases := []struct {
		name string
		req  func() *http.Request
		now  time.Time
		want string
	}{
		{"missing", func() *http.Request { return newReq(t, "GET", "http://h/x") }, time.Now(), "missing"},
		{"wrong secret", func() *http.Request {
			r := newReq(t, "GET", "http://h:1/v1/shards/abc.1?offset=0")
			Sign(r, []byte("other"))
			return r
		}, time.Now(), "bad signature"},
		{"other method", func() *http.Request { r := signed(); r.Method = "DELETE"; return r }, time.Now(), "bad signature"},
		{"other path", func() *http.Request { r := signed(); r.URL.Path = "/v1/shards/abc.2"; return r }, time.Now(), "bad signature"},
		{"other query", func() *http.Request { r := signed(); r.URL.RawQuery = "offset=1"; return r }, time.Now(), "bad signature"},
		{"expired", func() *http.Request { return signed() }, time.Now().Add(MaxSkew + time.Minute), "expired"},
		{"from the future", func() *http.Request { return signed() }, time.Now().Add(-MaxSkew - time.Minute), "expired"},
		{"no colon", func() *http.Request { r := signed(); r.Header.Set(Header, "12345"); return r }, time.Now(), "malformed"},
		{"bad ts", func() *http.Request {
			r := signed()
			_, sig, _ := strings.Cut(r.Header.Get(Header), ":")
			r.Header.Set(Header, "x1:"+sig)
			return r
		}, time.Now(), "malformed"},
		{"bad hex", func() *http.Request {
			r := signed()
			ts, sig, _ := strings.Cut(r.Header.Get(Header), ":")
			r.Header.Set(Header, ts+":"+strings.Repeat("z", len(sig)))
			return r
		}, time.Now(), "malformed"},
		{"short sig", func() *http.Request {
			r := signed()
			ts, sig, _ := strings.Cut(r.Header.Get(Header), ":")
			r.Header.Set(Header, ts+":"+sig[:10])
			return r
		}, time.Now(), "malformed"},
		{"tampered ts", func() *http.Request {
			r := signed()
			_, sig, _ := strings.Cut(r.Header.Get(Header), ":")
			r.Header.Set(Header, "1:"+sig)
			return r
		}, time.Now(), "bad signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.req(), secret, c.now)
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Verify = %v, want ErrUnauthorized", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Verify = %q, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestEmptySecretDisables(t *testing.T) {
	r := newReq(t, "GET", "http://h/x")
	Sign(r, nil)
	if r.Header.Get(Header) != "" {
		t.Errorf("Sign with empty secret set %q", r.Header.Get(Header))
	}
	if err := Verify(r, nil, time.Now()); err != nil {
		t.Errorf("Verify with empty secret: %v", err)
	}
	next := http.NotFoundHandler()
	if h := Middleware(nil, next); h == nil {
		t.Fatal("nil handler")
	}
}

func TestMiddleware(t *testing.T) {
	var served []string
	h := Middleware(secret, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served = append(served, r.Method+" "+r.URL.Path)
		io.WriteString(w, "ok")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	do := func(method, path string, key []byte) *http.Response {
		t.Helper()
		r := newReq(t, method, srv.URL+path)
		if key != nil {
			Sign(r, key)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp := do("GET", p, nil); resp.StatusCode != 200 {
			t.Errorf("GET %s unauthenticated: %s, want 200", p, resp.Status)
		}
	}
	if resp := do("PUT", "/v1/shards/a%2Fb?x=%20y", secret); resp.StatusCode != 200 {
		t.Errorf("signed PUT with escapes: %s", resp.Status)
	}

	for _, key := range [][]byte{nil, []byte("wrong")} {
		resp := do("DELETE", "/v1/shards/x", key)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("DELETE with key %q: %s, want 401", key, resp.Status)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		body, _ := io.ReadAll(resp.Body)
		var e struct{ Error string }
		if err := json.Unmarshal(body, &e); err != nil || !strings.HasPrefix(e.Error, "unauthorized") {
			t.Errorf("401 body %q (%v)", body, err)
		}
		if strings.Count(string(body), "\n") != 1 {
			t.Errorf("401 body is not one line: %q", body)
		}
	}
	for _, s := range served {
		if strings.HasPrefix(s, "DELETE") {
			t.Errorf("unauthenticated request reached the handler: %s", s)
		}
	}
}
