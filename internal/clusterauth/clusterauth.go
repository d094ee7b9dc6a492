// Package clusterauth authenticates HTTP requests between talus processes
// (metadata service, chunk servers, gateways) with a shared cluster secret.
//
// A signed request carries one header,
//
//	X-Talus-Auth: <unix-seconds>:<hex HMAC-SHA256(secret, method "\n" path["?" query] "\n" unix-seconds)>
//
// where path is the request's escaped path, exactly as sent on the wire.
// The signature proves that the sender knows the secret and binds the
// method, path and query (so a signed GET cannot be turned into a DELETE,
// or pointed at another shard), and the timestamp bounds replays to the
// allowed clock skew (MaxSkew). It does not cover the body or other
// headers: data integrity is end-to-end (shard checksums), and
// confidentiality on an untrusted network needs TLS.
//
// An empty secret disables authentication: Sign adds nothing, Verify
// accepts everything and Middleware is a no-op. That is meant for a
// single-machine development cluster only; never run a shared cluster
// without a secret.
package clusterauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header is the request header that carries the signature.
const Header = "X-Talus-Auth"

// MaxSkew is how far a request's timestamp may be from the verifier's
// clock, in either direction.
const MaxSkew = 5 * time.Minute

// ErrUnauthorized is wrapped by every error Verify returns.
var ErrUnauthorized = errors.New("unauthorized")

// Sign adds the authentication header to r, signed with secret at the
// current time. It replaces any existing signature. With an empty secret
// it does nothing.
func Sign(r *http.Request, secret []byte) {
	if len(secret) == 0 {
		return
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	var sum [sha256.Size]byte
	mac(sum[:0], secret, r, ts)
	v := make([]byte, 0, len(ts)+1+2*sha256.Size)
	v = append(v, ts...)
	v = append(v, ':')
	v = hex.AppendEncode(v, sum[:])
	r.Header.Set(Header, string(v))
}

// Verify checks r's signature against secret at time now. The error wraps
// ErrUnauthorized and says whether the header was missing, malformed,
// outside the allowed skew, or signed with another secret. With an empty
// secret every request is accepted.
func Verify(r *http.Request, secret []byte, now time.Time) error {
	if len(secret) == 0 {
		return nil
	}
	v := r.Header.Get(Header)
	if v == "" {
		return fmt.Errorf("%w: missing %s header", ErrUnauthorized, Header)
	}
	tsStr, sigHex, ok := strings.Cut(v, ":")
	ts, err := strconv.ParseInt(tsStr, 10, 64)
	if !ok || err != nil || len(sigHex) != 2*sha256.Size {
		return fmt.Errorf("%w: malformed %s header", ErrUnauthorized, Header)
	}
	var got [sha256.Size]byte
	if _, err := hex.Decode(got[:], []byte(sigHex)); err != nil {
		return fmt.Errorf("%w: malformed %s header", ErrUnauthorized, Header)
	}
	var want [sha256.Size]byte
	mac(want[:0], secret, r, tsStr)
	// The signature is checked before the time so that "expired" is only
	// ever said about a request that really was signed with our secret.
	if !hmac.Equal(got[:], want[:]) {
		return fmt.Errorf("%w: bad signature", ErrUnauthorized)
	}
	skew := now.Sub(time.Unix(ts, 0))
	if skew > MaxSkew || skew < -MaxSkew {
		return fmt.Errorf("%w: signature expired (clock skew %s, allowed %s)",
			ErrUnauthorized, skew.Round(time.Second), MaxSkew)
	}
	return nil
}

func mac(dst, secret []byte, r *http.Request, ts string) []byte {
	var buf [256]byte
	msg := append(buf[:0], r.Method...)
	msg = append(msg, '\n')
	msg = append(msg, r.URL.EscapedPath()...)
	if r.URL.RawQuery != "" {
		msg = append(msg, '?')
		msg = append(msg, r.URL.RawQuery...)
	}
	msg = append(msg, '\n')
	msg = append(msg, ts...)
	h := hmac.New(sha256.New, secret)
	h.Write(msg) // never fails
	return h.Sum(dst)
}

// Middleware returns a handler that answers 401 with a one-line JSON error
// ({"error":"..."}) to requests that fail Verify and passes the rest to
// next. The probe endpoints /healthz, /readyz and /metrics are served
// without authentication so that orchestrators and Prometheus can reach
// them. With an empty secret it returns next unchanged.
func Middleware(secret []byte, next http.Handler) http.Handler {
	if len(secret) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			next.ServeHTTP(w, r)
			return
		}
		if err := Verify(r, secret, time.Now()); err != nil {
			body, _ := json.Marshal(struct {
				Error string `json:"error"`
			}{err.Error()})
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write(append(body, '\n'))
			return
		}
		next.ServeHTTP(w, r)
	})
}
