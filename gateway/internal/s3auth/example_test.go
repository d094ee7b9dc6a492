package s3auth_test

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"

	"github.com/talusfs/talus/gateway/internal/s3auth"
	"github.com/talusfs/talus/gateway/internal/s3checksum"
	"github.com/talusfs/talus/gateway/internal/s3err"
)

type keys map[string]string

func (k keys) Secret(_ context.Context, accessKey string) (string, error) {
	if s, ok := k[accessKey]; ok {
		return s, nil
	}
	return "", s3auth.ErrUnknownKey
}

// How a PutObject handler uses the packages: authenticate, verify the
// checksums the client declared while the data streams through, and commit
// only after the body has reached io.EOF.
func ExampleVerifier_Verify() {
	v := &s3auth.Verifier{Creds: keys{"AKID": "secret"}}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /{bucket}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		fail := func(err error) { s3err.Write(w, r, s3err.From(err), r.URL.Path, "request-id") }
		res, err := v.Verify(r)
		if err != nil {
			fail(err)
			return
		}
		if res.Anonymous {
			fail(s3err.ErrAccessDenied)
			return
		}
		var body io.Reader = r.Body
		if res.Body != nil {
			body = res.Body
			defer res.Body.Close()
		}
		// A checksum in a header (a trailing one is Verify's business).
		alg, value, err := s3checksum.FromHeader(r.Header)
		if err != nil {
			fail(err)
			return
		}
		var sum *s3checksum.Reader
		if alg != s3checksum.None {
			if sum, err = s3checksum.NewReader(body, alg, value); err != nil {
				fail(err)
				return
			}
			body = sum
		}
		// MD5 for the ETag, checked against Content-MD5 if there is one.
		etag, err := s3checksum.NewReader(body, s3checksum.MD5, r.Header.Get("Content-Md5"))
		if err != nil {
			fail(err)
			return
		}
		if _, err := io.Copy(io.Discard /* the store */, etag); err != nil {
			fail(err) // SignatureDoesNotMatch, BadDigest, IncompleteBody...
			return
		}
		// Verified: commit, with the Content-Encoding the client meant for
		// the object, and remember the checksum to return it later.
		_ = s3auth.ContentEncoding(r.Header)
		switch {
		case res.TrailerChecksum != s3checksum.None:
			w.Header().Set(res.TrailerChecksum.Header(), res.TrailerChecksumValue())
		case sum != nil:
			w.Header().Set(alg.Header(), sum.Value())
		}
		w.Header().Set("ETag", `"`+hex.EncodeToString(etag.Sum())+`"`)
	})
}
