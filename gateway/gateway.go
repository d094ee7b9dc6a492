package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/gateway/internal/s3auth"
	"github.com/talusfs/talus/gateway/internal/s3err"
	"github.com/talusfs/talus/internal/metrics"
	"github.com/talusfs/talus/meta/metaapi"
)

// Config configures a Gateway.
type Config struct {
	// Client reaches the cluster.
	Client *client.Client
	// RootAccessKey and RootSecretKey are the credentials that may use
	// every bucket.
	RootAccessKey, RootSecretKey string
	// Domain enables virtual-host-style addressing: a request to
	// <bucket>.<Domain> names the bucket in its Host. Empty: path style only.
	Domain string
	// Region is what the gateway tells clients it is; default "us-east-1".
	Region string
	Logger *slog.Logger
	// MultipartExpiry is how old an unfinished multipart upload must be
	// before Run aborts it; default 24h.
	MultipartExpiry time.Duration
}

// Gateway serves the S3 API. It keeps no state a restart would lose, so any
// number of gateways may serve one cluster.
type Gateway struct {
	cfg      Config
	c        *client.Client
	meta     *metaapi.Client
	log      *slog.Logger
	verifier s3auth.Verifier
	users    *userCache
	buckets  *bucketCache

	service, bucket, object *mux.Router

	// Request IDs count up from a random start, so that gateways serving
	// the same cluster hand out distinct ones.
	nextID atomic.Uint64
	hostID []string // x-amz-id-2, shared by every response and never modified
}

// New returns a gateway serving cfg.Client's cluster.
func New(cfg Config) (*Gateway, error) {
	if cfg.Client == nil {
		return nil, errors.New("gateway: Config.Client is required")
	}
	if cfg.RootAccessKey == "" || cfg.RootSecretKey == "" {
		return nil, errors.New("gateway: root access key and secret key are required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MultipartExpiry <= 0 {
		cfg.MultipartExpiry = 24 * time.Hour
	}
	cfg.Domain = strings.ToLower(strings.TrimSuffix(cfg.Domain, "."))
	g := &Gateway{
		cfg:  cfg,
		c:    cfg.Client,
		meta: cfg.Client.Meta(),
		log:  cfg.Logger,
	}
	g.users = newUserCache(g.meta, cfg.RootAccessKey, cfg.RootSecretKey)
	g.buckets = newBucketCache(g.meta)
	g.verifier.Creds = g.users
	g.verifier.Domain = cfg.Domain
	var seed [32]byte
	rand.Read(seed[:])
	g.nextID.Store(binary.LittleEndian.Uint64(seed[:8]))
	g.hostID = []string{base64.StdEncoding.EncodeToString(seed[8:])}
	g.routes()
	return g, nil
}

// Handler returns the HTTP handler of the S3 API.
func (g *Gateway) Handler() http.Handler { return http.HandlerFunc(g.serveHTTP) }

// request is one S3 request on its way through the gateway.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	id     string
	bucket string
	key    string
	vhost  bool // the bucket was named in the Host
	user   *identity
	auth   *s3auth.Result
	op     string
	query  url.Values // parsed on first use
}

func (q *request) ctx() context.Context { return q.r.Context() }

// param returns a query parameter's value.
func (q *request) param(name string) string {
	if q.query == nil {
		q.query = q.r.URL.Query()
	}
	return q.query.Get(name)
}

// hasParam reports whether the query carries name, with a value or not.
func (q *request) hasParam(name string) bool {
	if q.query == nil {
		q.query = q.r.URL.Query()
	}
	_, ok := q.query[name]
	return ok
}

// body is the request body, decoded and verifying as it is read.
func (q *request) body() io.Reader {
	if q.auth != nil && q.auth.Body != nil {
		return q.auth.Body
	}
	return q.r.Body
}

// bodyLength is the decoded body's length, -1 if unknown.
func (q *request) bodyLength() int64 {
	if q.auth != nil {
		return q.auth.DecodedLength
	}
	return q.r.ContentLength
}

// resource names what the request addresses, for error documents.
func (q *request) resource() string {
	switch {
	case q.bucket == "":
		return "/"
	case q.key == "":
		return "/" + q.bucket
	}
	return "/" + q.bucket + "/" + q.key
}

// maxHeaderBytes is S3's limit on a request's header section.
const maxHeaderBytes = 8 << 10

func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	q := &request{w: w, r: r, id: g.newRequestID()}
	h := w.Header()
	h["X-Amz-Request-Id"] = []string{q.id}
	h["X-Amz-Id-2"] = g.hostID
	h["Server"] = serverHeader

	if headerBytes(r) > maxHeaderBytes {
		g.fail(q, s3err.ErrRequestHeaderSectionTooLarge)
		return
	}
	var ok bool
	if q.bucket, q.key, q.vhost, ok = g.resolve(r); !ok {
		g.fail(q, s3err.ErrInvalidURI)
		return
	}
	if r.Method == http.MethodOptions {
		g.preflight(q)
		return
	}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		// Tag failures to read from the client, so they are not blamed
		// on the cluster. The wrapper goes on a copy of the request:
		// net/http looks at the original's Body after the handler to
		// decide whether it may skip the body of a refused
		// "Expect: 100-continue" request, which it must never read.
		rc := *r
		rc.Body = &clientBody{rc: r.Body}
		r = &rc
		q.r = r
	}
	res, err := g.verifier.Verify(r)
	if err != nil {
		g.fail(q, err)
		return
	}
	q.auth = res
	if res.Anonymous {
		// Operations serve anonymous callers only what ACLs grant them.
		q.user = &identity{anonymous: true}
	} else if q.user, err = g.users.identity(q.ctx(), res.AccessKey); err != nil {
		g.fail(q, err)
		return
	}
	if len(q.key) > metaapi.MaxKeyLen {
		g.fail(q, s3err.ErrKeyTooLong)
		return
	}

	router := g.service
	switch {
	case q.key != "":
		router = g.object
	case q.bucket != "":
		router = g.bucket
	}
	var m mux.RouteMatch
	matched := router.Match(r, &m)
	op, isOp := m.Handler.(*operation)
	switch {
	case m.MatchErr == mux.ErrMethodMismatch:
		g.fail(q, s3err.ErrMethodNotAllowed)
		return
	case !matched || !isOp:
		g.fail(q, s3err.ErrNotImplemented.WithMessage("The requested operation is not implemented."))
		return
	}
	q.op = op.name
	metrics.SetOp(r.Context(), op.name)
	if err := op.fn(q); err != nil {
		g.fail(q, err)
	}
}

var serverHeader = []string{"talus"}

// preflight answers a CORS preflight request (OPTIONS), which browsers
// send without credentials. Buckets have no CORS configuration in talus,
// so a well-formed one is refused as S3 refuses it for such a bucket.
func (g *Gateway) preflight(q *request) {
	q.op = "PreflightCORS"
	metrics.SetOp(q.ctx(), q.op)
	h := q.r.Header
	switch {
	case h.Get("Origin") == "":
		g.fail(q, s3err.ErrBadRequest.WithMessage("Insufficient information. Origin request header needed."))
	case h.Get("Access-Control-Request-Method") == "":
		g.fail(q, s3err.ErrBadRequest.WithMessage("Invalid Access-Control-Request-Method: null"))
	case q.bucket == "":
		g.fail(q, s3err.ErrCORSNotEnabled)
	default:
		if _, err := g.buckets.get(q.ctx(), q.bucket); err != nil {
			g.fail(q, err)
			return
		}
		g.fail(q, s3err.ErrCORSNotEnabled)
	}
}

// headerBytes approximates the size of r's header fields as sent. The
// request line does not count: presigned URLs put their signature there.
func headerBytes(r *http.Request) int {
	n := len(r.Host) + 8
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// resolve finds the bucket and key a request addresses, virtual-host style
// if its Host is a subdomain of Config.Domain, path style otherwise.
func (g *Gateway) resolve(r *http.Request) (bucket, key string, vhost, ok bool) {
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	if path[0] != '/' {
		return "", "", false, false
	}
	if d := g.cfg.Domain; d != "" {
		host := r.Host
		if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
			host = host[:i]
		}
		if len(host) > len(d)+1 && host[len(host)-len(d)-1] == '.' && strings.EqualFold(host[len(host)-len(d):], d) {
			return strings.ToLower(host[:len(host)-len(d)-1]), path[1:], true, true
		}
	}
	bucket, key, _ = strings.Cut(path[1:], "/")
	return bucket, key, false, true
}

func (g *Gateway) newRequestID() string {
	const digits = "0123456789ABCDEF"
	n := g.nextID.Add(1)
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[n&15]
		n >>= 4
	}
	return string(b[:])
}

// errStreamAborted reports a failure after the response began: there is no
// way left to tell the client but to cut the connection.
var errStreamAborted = errors.New("response aborted mid-stream")

// fail answers q with err as an S3 error document and logs what the client
// is not told.
func (g *Gateway) fail(q *request, err error) {
	if errors.Is(err, errStreamAborted) {
		panic(http.ErrAbortHandler)
	}
	e := g.s3error(err)
	level := slog.LevelDebug
	if e.HTTPStatus >= 500 {
		level = slog.LevelError
		if q.ctx().Err() != nil {
			level = slog.LevelDebug // the client went away
		}
	}
	if g.log.Enabled(q.ctx(), level) {
		g.log.LogAttrs(q.ctx(), level, "s3 request failed",
			slog.String("request", q.id), slog.String("op", q.op),
			slog.String("method", q.r.Method), slog.String("resource", q.resource()),
			slog.String("code", e.Code), slog.Int("status", e.HTTPStatus), slog.Any("err", err))
	}
	if q.r.ContentLength != 0 && bodyMismatch(e) {
		// The body was not what its headers said. Whatever the client
		// meant to send may not end where this request's framing did
		// (a Content-Length short of the body, say), so the connection
		// cannot be trusted for another request.
		q.w.Header()["Connection"] = connectionClose
	}
	s3err.Write(q.w, q.r, e, q.resource(), q.id)
}

var connectionClose = []string{"close"}

// bodyMismatch reports whether e says a request body did not match its
// declared length or digests.
func bodyMismatch(e *s3err.Error) bool {
	switch e.Code {
	case s3err.ErrBadDigest.Code, s3err.ErrIncompleteBody.Code, s3err.ErrXAmzContentSHA256Mismatch.Code:
		return true
	}
	return false
}

// s3error maps an error from any layer to what the client is told.
func (g *Gateway) s3error(err error) *s3err.Error {
	var e *s3err.Error
	if errors.As(err, &e) {
		return e
	}
	var cb *clientBodyError
	if errors.As(err, &cb) {
		var ne interface{ Timeout() bool }
		if errors.As(cb.err, &ne) && ne.Timeout() {
			return s3err.ErrRequestTimeout.WithCause(err)
		}
		return s3err.ErrIncompleteBody.WithCause(err)
	}
	for _, m := range errorMap {
		if errors.Is(err, m.err) {
			return m.s3.WithCause(err)
		}
	}
	return s3err.ErrInternalError.WithCause(err)
}

var errorMap = []struct {
	err error
	s3  *s3err.Error
}{
	{metaapi.ErrNoSuchBucket, s3err.ErrNoSuchBucket},
	{metaapi.ErrNoSuchKey, s3err.ErrNoSuchKey},
	{metaapi.ErrNoSuchUpload, s3err.ErrNoSuchUpload},
	{metaapi.ErrBucketNotEmpty, s3err.ErrBucketNotEmpty},
	{metaapi.ErrBucketExists, s3err.ErrBucketAlreadyExists},
	{metaapi.ErrPrecondition, s3err.ErrPreconditionFailed},
	{metaapi.ErrInvalidPart, s3err.ErrInvalidPart},
	{metaapi.ErrInvalidPartOrder, s3err.ErrInvalidPartOrder},
	{metaapi.ErrEntityTooSmall, s3err.ErrEntityTooSmall},
	{metaapi.ErrConflict, s3err.ErrOperationAborted},
	{metaapi.ErrInvalidName, s3err.ErrInvalidArgument},
	{metaapi.ErrInvalidArgument, s3err.ErrInvalidArgument},
	{metaapi.ErrNotEnoughServers, s3err.ErrServiceUnavailable},
	{metaapi.ErrUnavailable, s3err.ErrServiceUnavailable},
	{client.ErrInvalidRange, s3err.ErrInvalidRange},
	{client.ErrSizeMismatch, s3err.ErrIncompleteBody},
	{client.ErrBadDigest, s3err.ErrBadDigest},
	{context.DeadlineExceeded, s3err.ErrRequestTimeout},
}

// clientBody marks errors reading the request body as the client's.
type clientBody struct {
	rc  io.ReadCloser
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	if err != nil {
		if err != io.EOF {
			err = &clientBodyError{err}
		}
		b.err = err
	}
	return n, err
}

func (b *clientBody) Close() error { return b.rc.Close() }

type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return fmt.Sprintf("read request body: %v", e.err) }
func (e *clientBodyError) Unwrap() error { return e.err }
