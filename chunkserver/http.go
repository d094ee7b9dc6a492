package chunkserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/talusfs/talus/internal/clusterauth"
)

// Handler returns the HTTP API, authenticated with the configured secret:
//
//	PUT    /v1/shards/{id}   store a shard (see below) -> 201 {"disk":...}
//	GET    /v1/shards/{id}   read it, or ?offset=&length= of it
//	HEAD   /v1/shards/{id}   its size, in X-Talus-Shard-Size
//	DELETE /v1/shards/{id}   remove it -> 204, also when absent
//	GET    /v1/inventory     every shard, as NDJSON ShardInfo lines
//	GET    /v1/status        Status as JSON
//	GET    /v1/scrub         ScrubStatus as JSON
//	POST   /v1/scrub         start a scrub pass now -> 202 ScrubStatus
//	GET    /healthz          200 while the process runs (no auth)
//	GET    /readyz           200 when a disk can take shards (no auth)
//
// A PUT gives the body's length in X-Talus-Shard-Size and may give its
// CRC32C in X-Talus-Crc32c, as a header or, declared in a Trailer header,
// as a trailer of a chunked body. A sender that does not know the length
// sends X-Talus-Shard-Size: -1 and a chunked body with the X-Talus-Crc32c
// trailer, which is then required: with no length to hold the body to,
// the checksum is its only end-to-end check. Until such
// a body has ended the server holds room on the disk for the largest shard
// it accepts (Config.MaxShardSize) and answers 507 if no disk has that
// much, so give the length whenever it is known. A body that outgrows
// MaxShardSize is refused with 400.
//
// Errors are JSON {"error":"..."} with the status saying what kind:
// 400 bad request, 401 unauthorized, 404 not found, 416 range outside the
// shard, 500 with X-Talus-Error: corrupt for a shard that failed its
// checksums, 507 insufficient storage.
//
// When a GET finds a corrupt block after it has started sending, the
// handler panics with http.ErrAbortHandler so that net/http cuts the
// response short of its Content-Length. Middleware that recovers panics
// must re-panic that one, or the client could take a truncated body for a
// whole one.
func (s *Server) Handler() http.Handler {
	return clusterauth.Middleware(s.secret, http.HandlerFunc(s.route))
}

// route dispatches by hand rather than with http.ServeMux because the mux
// cleans paths and redirects (to a different shard id, for "../x"),
// where a bad id must simply be refused.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if s.closed.Load() {
		// The disks are unlocked; another process may own them now.
		writeError(w, http.StatusServiceUnavailable, "server closed")
		return
	}
	p := r.URL.Path
	if id, ok := strings.CutPrefix(p, "/v1/shards/"); ok {
		switch r.Method {
		case http.MethodPut:
			s.handlePut(w, r, id)
		case http.MethodGet, http.MethodHead:
			s.handleGet(w, r, id)
		case http.MethodDelete:
			s.handleDelete(w, id)
		default:
			methodNotAllowed(w, "GET, HEAD, PUT, DELETE")
		}
		return
	}
	if p == "/v1/scrub" {
		s.handleScrub(w, r)
		return
	}
	switch p {
	case "/v1/inventory", "/v1/status", "/healthz", "/readyz":
	default:
		writeError(w, http.StatusNotFound, "no such endpoint")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	switch p {
	case "/v1/inventory":
		s.handleInventory(w, r)
	case "/v1/status":
		st, err := s.Status(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	case "/healthz":
		w.Write([]byte("ok\n"))
	case "/readyz":
		for _, d := range s.disks {
			if d.healthy() {
				w.Write([]byte("ok\n"))
				return
			}
		}
		writeError(w, http.StatusServiceUnavailable, "no healthy disk")
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "method not allowed")
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// serveError answers with the status err calls for.
func (s *Server) serveError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	msg := err.Error()
	switch {
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrInsufficientStorage):
		code, msg = http.StatusInsufficientStorage, "insufficient storage"
	case errors.Is(err, ErrCorrupt):
		w.Header().Set(HeaderError, "corrupt")
	case errors.Is(err, errRange):
		code = http.StatusRequestedRangeNotSatisfiable
	case r.Context().Err() != nil:
		return // the client is gone
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, code, msg)
}

var errRange = errors.New("range not satisfiable")

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request, id string) {
	size, err := strconv.ParseInt(r.Header.Get(HeaderShardSize), 10, 64)
	if err != nil {
		s.serveError(w, r, fmt.Errorf("%w: missing or malformed %s header", ErrBadRequest, HeaderShardSize))
		return
	}
	if size == unknownSize {
		// net/http takes declared trailers only on a chunked body, so
		// this also refuses a Content-Length with an unknown size.
		if _, ok := r.Trailer[HeaderCRC32C]; !ok {
			s.serveError(w, r, fmt.Errorf("%w: %s -1 (unknown) needs a chunked body with a %s trailer", ErrBadRequest, HeaderShardSize, HeaderCRC32C))
			return
		}
	}
	if r.ContentLength >= 0 && r.ContentLength != size {
		s.serveError(w, r, fmt.Errorf("%w: Content-Length %d but %s %d", ErrBadRequest, r.ContentLength, HeaderShardSize, size))
		return
	}
	want := func() (uint32, bool, error) {
		v := r.Header.Get(HeaderCRC32C)
		if v == "" {
			v = r.Trailer.Get(HeaderCRC32C)
		}
		if v == "" {
			return 0, false, nil
		}
		c, err := strconv.ParseUint(v, 16, 32)
		if err != nil || len(v) != 8 {
			return 0, false, fmt.Errorf("%w: malformed %s %q", ErrBadRequest, HeaderCRC32C, v)
		}
		return uint32(c), true, nil
	}
	var limit int64
	if v := r.Header.Get(HeaderShardMax); v != "" {
		if limit, err = strconv.ParseInt(v, 10, 64); err != nil || limit < 0 {
			s.serveError(w, r, fmt.Errorf("%w: malformed %s %q", ErrBadRequest, HeaderShardMax, v))
			return
		}
	}
	d, err := s.putShard(r.Context(), id, size, limit, r.Body, want)
	if err != nil {
		s.serveError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write([]byte(`{"disk":"` + d.id + "\"}\n"))
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, id string) {
	head := r.Method == http.MethodHead
	off, n, err := parseRange(r.URL.RawQuery)
	if err != nil {
		s.serveError(w, r, err)
		return
	}
	sr, err := s.openShard(id, !head)
	if err != nil {
		s.serveError(w, r, err)
		return
	}
	defer sr.close()
	size := sr.ft.dataLen
	if n < 0 {
		n = size - off
	}
	if off > size || n < 0 || n > size-off {
		s.serveError(w, r, fmt.Errorf("%w: offset %d length %d outside shard %s of %d bytes", errRange, off, n, id, size))
		return
	}
	h := w.Header()
	h.Set(HeaderShardSize, strconv.FormatInt(size, 10))
	if head {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		return
	}
	started := func() {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(n, 10))
		w.WriteHeader(http.StatusOK)
	}
	sent := false
	err = sr.writeRange(r.Context(), off, n, w, func() { started(); sent = true })
	switch {
	case err == nil:
	case !sent:
		s.serveError(w, r, err)
	default:
		var we errWrite
		if !errors.As(err, &we) && r.Context().Err() == nil {
			s.log.Error("aborting shard read", "shard", id, "err", err)
		}
		// Headers and some data are out: the only way left to tell the
		// client is to cut the response short of its Content-Length.
		panic(http.ErrAbortHandler)
	}
}

// parseRange reads offset and length (-1 if absent) from the query
// string, by hand because url.Values would allocate a map per read.
func parseRange(q string) (off, n int64, err error) {
	n = -1
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		var p *int64
		switch k {
		case "offset":
			p = &off
		case "length":
			p = &n
		default:
			continue
		}
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil || x < 0 {
			return 0, 0, fmt.Errorf("%w: malformed %s %q", ErrBadRequest, k, v)
		}
		*p = x
	}
	return off, n, nil
}

func (s *Server) handleDelete(w http.ResponseWriter, id string) {
	if err := s.deleteShard(id); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrBadRequest) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleInventory streams one JSON line per shard. If the walk fails
// midway the response is aborted, so that the client sees an error rather
// than a short list it could take for complete.
func (s *Server) handleInventory(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	st := s.getState()
	defer s.putState(st)
	buf := st.buf[:0]
	flushAt := len(st.buf) - 512 // room for one more line
	err := s.Inventory(r.Context(), func(si ShardInfo) error {
		buf = append(buf, `{"id":"`...)
		buf = append(buf, si.ID...)
		buf = append(buf, `","disk":"`...)
		buf = append(buf, si.Disk...)
		buf = append(buf, `","size":`...)
		buf = strconv.AppendInt(buf, si.Size, 10)
		buf = append(buf, `,"mtime":`...)
		buf = strconv.AppendInt(buf, si.MTime, 10)
		buf = append(buf, "}\n"...)
		if len(buf) >= flushAt {
			if _, err := w.Write(buf); err != nil {
				return errWrite{err}
			}
			buf = buf[:0]
		}
		return nil
	})
	if err == nil {
		_, err = w.Write(buf)
	}
	if err != nil {
		var we errWrite
		if !errors.As(err, &we) && r.Context().Err() == nil {
			s.log.Error("inventory failed", "err", err)
		}
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) handleScrub(w http.ResponseWriter, r *http.Request) {
	var st ScrubStatus
	code := http.StatusOK
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		st = s.ScrubStatus()
	case http.MethodPost:
		st, code = s.Scrub(), http.StatusAccepted
	default:
		methodNotAllowed(w, "GET, HEAD, POST")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(st)
}
