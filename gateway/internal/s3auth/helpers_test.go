package s3auth

import (
	"context"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/talusfs/talus/gateway/internal/s3checksum"
	"github.com/talusfs/talus/gateway/internal/s3err"
)

const (
	testAccessKey = "AKIDTALUSTEST"
	testSecret    = "talus/test+secret/KEY0123456789abcdefghij"
)

// memCreds is a CredentialStore over a map.
type memCreds map[string]string

func (m memCreds) Secret(_ context.Context, accessKey string) (string, error) {
	s, ok := m[accessKey]
	if !ok {
		return "", fmt.Errorf("key %q: %w", accessKey, ErrUnknownKey)
	}
	return s, nil
}

func testCreds() memCreds { return memCreds{testAccessKey: testSecret} }

// outcome is what the fake S3 saw of one request.
type outcome struct {
	proto   int // HTTP major version
	method  string
	mode    string // x-amz-content-sha256 as received
	headers http.Header
	res     *Result
	body    []byte
	err     error // from Verify or from reading the body
	// checksum is the algorithm and value the body was verified against,
	// from a trailer or a header.
	checksumAlg   s3checksum.Algorithm
	checksumValue string
}

// fakeS3 is just enough of S3 for the clients under test: it authenticates
// every request with a Verifier, reads and verifies the body the way the
// gateway will, and answers PutObject, the multipart calls and GetObject.
type fakeS3 struct {
	v *Verifier

	mu      sync.Mutex
	log     []outcome
	objects map[string][]byte
	parts   map[string][]byte // "uploadID/partNumber"
}

func newFakeS3(v *Verifier) *fakeS3 {
	return &fakeS3{v: v, objects: map[string][]byte{}, parts: map[string][]byte{}}
}

func (f *fakeS3) record(o outcome) {
	f.mu.Lock()
	f.log = append(f.log, o)
	f.mu.Unlock()
}

// outcomes returns and clears the log.
func (f *fakeS3) outcomes() []outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.log
	f.log = nil
	return l
}

func (f *fakeS3) last(t *testing.T) outcome {
	t.Helper()
	l := f.outcomes()
	if len(l) == 0 {
		t.Fatal("the server saw no request")
	}
	return l[len(l)-1]
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o := outcome{proto: r.ProtoMajor, method: r.Method, mode: r.Header.Get("X-Amz-Content-Sha256"), headers: r.Header.Clone()}
	fail := func(err error) {
		o.err = err
		f.record(o)
		s3err.Write(w, r, s3err.From(err), r.URL.Path, "test-request")
	}
	res, err := f.v.Verify(r)
	if err != nil {
		fail(err)
		return
	}
	o.res = res
	var body io.Reader = r.Body
	if res.Body != nil {
		body = res.Body
		defer res.Body.Close()
	}
	var hdr *s3checksum.Reader
	alg, value, err := s3checksum.FromHeader(r.Header)
	if err != nil {
		fail(err)
		return
	}
	if alg != s3checksum.None && r.Method == http.MethodPut {
		if hdr, err = s3checksum.NewReader(body, alg, value); err != nil {
			fail(err)
			return
		}
		body = hdr
	}
	md5r, err := s3checksum.NewReader(body, s3checksum.MD5, r.Header.Get("Content-Md5"))
	if err != nil {
		fail(err)
		return
	}
	data, err := io.ReadAll(md5r)
	if err != nil {
		fail(err)
		return
	}
	o.body = data
	switch {
	case res.TrailerChecksum != s3checksum.None:
		o.checksumAlg, o.checksumValue = res.TrailerChecksum, res.TrailerChecksumValue()
	case hdr != nil:
		o.checksumAlg, o.checksumValue = alg, hdr.Value()
	}
	f.record(o)

	etag := `"` + hex.EncodeToString(md5r.Sum()) + `"`
	q := r.URL.Query()
	key := r.URL.Path
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == "POST" && q.Has("uploads"):
		writeXML(w, struct {
			XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
			Bucket   string
			Key      string
			UploadId string
		}{Key: key, UploadId: "upload-" + strconv.Itoa(len(f.parts))})
	case r.Method == "PUT" && q.Has("uploadId"):
		f.parts[q.Get("uploadId")+"/"+q.Get("partNumber")] = data
		w.Header().Set("ETag", etag)
	case r.Method == "POST" && q.Has("uploadId"):
		var all []byte
		for i := 1; ; i++ {
			p, ok := f.parts[q.Get("uploadId")+"/"+strconv.Itoa(i)]
			if !ok {
				break
			}
			all = append(all, p...)
		}
		f.objects[key] = all
		writeXML(w, struct {
			XMLName xml.Name `xml:"CompleteMultipartUploadResult"`
			Bucket  string
			Key     string
			ETag    string
		}{Bucket: "bucket", Key: key, ETag: `"multipart-2"`})
	case r.Method == "PUT":
		f.objects[key] = data
		w.Header().Set("ETag", etag)
	case r.Method == "GET" || r.Method == "HEAD":
		obj, ok := f.objects[key]
		if !ok {
			s3err.Write(w, r, s3err.ErrNoSuchKey, key, "test-request")
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(obj)))
		w.Header().Set("Last-Modified", "Fri, 01 Mar 2024 12:00:00 GMT")
		w.Write(obj)
	}
}

func writeXML(w http.ResponseWriter, v any) {
	b, _ := xml.Marshal(v)
	w.Header().Set("Content-Type", "application/xml")
	w.Write(append([]byte(xml.Header), b...))
}

func (f *fakeS3) object(key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objects[key]
	return b, ok
}

// startFake runs a fakeS3 behind an httptest server, over TLS if tls.
func startFake(t *testing.T, v *Verifier, tls bool) (*fakeS3, *httptest.Server) {
	t.Helper()
	f := newFakeS3(v)
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(f)
	} else {
		srv = httptest.NewServer(f)
	}
	t.Cleanup(srv.Close)
	return f, srv
}

// wantCode checks that err is an *s3err.Error with the given code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var e *s3err.Error
	switch {
	case code == "" && err != nil:
		t.Errorf("%s: unexpected error %v", what, err)
	case code == "":
	case !errors.As(err, &e):
		t.Errorf("%s: got %v, want %s", what, err, code)
	case e.Code != code:
		t.Errorf("%s: got %s (%s), want %s", what, e.Code, e.Message, code)
	}
}

// fixedNow returns a clock stuck at t.
func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }
