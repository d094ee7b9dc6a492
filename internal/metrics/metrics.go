// Package metrics serves a talus process's Prometheus metrics: each process
// (each server, in a test that runs several) has its own registry, and
// Serve puts /metrics in front of the role's handler and counts its
// requests by operation and status.
package metrics

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry with the Go runtime and process
// collectors, for one server.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// opKey is the context key of the slot a handler names its operation in.
type opKey struct{}

// SetOp names the operation a request served through Serve performs (an S3
// operation, say), for the op label of its request metrics. Outside Serve
// it does nothing.
func SetOp(ctx context.Context, op string) {
	if p, ok := ctx.Value(opKey{}).(*string); ok {
		*p = op
	}
}

// Serve answers GET /metrics from reg, without authentication (nothing
// there is secret: counts, sizes, timings), and passes every other request
// to next, counting it. A request's op label is what the handler gave
// SetOp, else what op says about the request after it was served (it may
// read r.Pattern, which http.ServeMux sets), else "other".
func Serve(reg *prometheus.Registry, next http.Handler, op func(*http.Request) string) http.Handler {
	m := newHTTPMetrics(reg)
	scrape := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			scrape.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		name := new(string)
		// A copy of the request carries the counting body, so that
		// net/http still sees its own body after the handler.
		r = r.WithContext(context.WithValue(r.Context(), opKey{}, name))
		var in *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			in = &countingBody{ReadCloser: r.Body}
			r.Body = in
		}
		cw := &countingWriter{ResponseWriter: w}
		// Deferred so that handlers that abort the response with a panic
		// (http.ErrAbortHandler) are counted too.
		defer func() {
			label := *name
			if label == "" && op != nil {
				label = op(r)
			}
			if label == "" {
				label = "other"
			}
			code := "aborted"
			if cw.done {
				code = strconv.Itoa(cw.status())
			}
			m.requests.WithLabelValues(label, code).Inc()
			m.duration.WithLabelValues(label).Observe(time.Since(start).Seconds())
			if in != nil {
				m.bytesIn.WithLabelValues(label).Add(float64(in.n))
			}
			m.bytesOut.WithLabelValues(label).Add(float64(cw.n))
		}()
		next.ServeHTTP(cw, r)
		cw.done = true
	})
}

type httpMetrics struct {
	requests          *prometheus.CounterVec
	duration          *prometheus.HistogramVec
	bytesIn, bytesOut *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "talus_http_requests_total",
			Help: "HTTP requests served, by operation and status code (aborted: the response was cut short).",
		}, []string{"op", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "talus_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms to 16 s
		}, []string{"op"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "talus_http_request_body_bytes_total",
			Help: "Request body bytes read, by operation.",
		}, []string{"op"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "talus_http_response_body_bytes_total",
			Help: "Response body bytes written, by operation.",
		}, []string{"op"}),
	}
	reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut)
	return m
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// countingWriter notes the status and counts the body. Unwrap lets
// http.ResponseController reach the connection underneath.
type countingWriter struct {
	http.ResponseWriter
	code int
	n    int64
	done bool // the handler returned
}

func (w *countingWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *countingWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
