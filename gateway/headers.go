package gateway

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/talusfs/talus/gateway/internal/s3checksum"
	"github.com/talusfs/talus/gateway/internal/s3err"
	"github.com/talusfs/talus/meta/metaapi"
)

const (
	userMetaPrefix  = "x-amz-meta-"
	maxUserMeta     = 2 << 10 // S3's limit on user metadata per object
	defaultCType    = "binary/octet-stream"
	storageStandard = "STANDARD"
	keyStorageClass = "x-amz-storage-class"
	maxPutSize      = 5 << 30 // S3's limit on one PUT and on one part
	iso8601Millis   = "2006-01-02T15:04:05.000Z"
)

// storedHeaders are the request headers kept with an object and returned on
// GET and HEAD: canonical form as http.Header keys it, and the lower-case
// Meta key.
var storedHeaders = [...]struct{ canon, key string }{
	{"Cache-Control", "cache-control"},
	{"Content-Disposition", "content-disposition"},
	{"Content-Encoding", "content-encoding"},
	{"Content-Language", "content-language"},
	{"Expires", "expires"},
	{"X-Amz-Website-Redirect-Location", "x-amz-website-redirect-location"},
}

var storageClasses = []string{
	storageStandard, "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
	"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "EXPRESS_ONEZONE", "SNOW",
}

// objectAttrs reads the attributes a request gives a new object (PUT, copy
// with REPLACE, multipart creation): its Content-Type and the Meta map
// described in the package documentation, its canned ACL included. It
// refuses headers asking for features the gateway does not have, rather
// than ignoring them.
func objectAttrs(h http.Header) (ctype string, meta map[string]string, err error) {
	if err := unsupportedHeaders(h); err != nil {
		return "", nil, err
	}
	acl, err := requestACL(h)
	if err != nil {
		return "", nil, err
	}
	ctype = h.Get("Content-Type")
	userBytes := 0
	var latin1 []string
	for k, vs := range h {
		if len(k) <= len(userMetaPrefix) || !strings.EqualFold(k[:len(userMetaPrefix)], userMetaPrefix) {
			continue
		}
		if meta == nil {
			meta = make(map[string]string, 8)
		}
		v := vs[0]
		if len(vs) > 1 {
			v = strings.Join(vs, ",")
		}
		userBytes += len(k) - len(userMetaPrefix) + len(v)
		name := strings.ToLower(k)
		if !utf8.ValidString(v) {
			// Header octets beyond ASCII that are not UTF-8 are
			// ISO-8859-1 (Python clients send them so). The metadata
			// store keeps UTF-8, so they are stored converted and
			// noted, to be sent back as the octets that came.
			v = latin1ToUTF8(v)
			latin1 = append(latin1, name)
		}
		meta[name] = v
	}
	if userBytes > maxUserMeta {
		return "", nil, s3err.ErrMetadataTooLarge
	}
	if latin1 != nil {
		slices.Sort(latin1)
		meta[keyLatin1Meta] = strings.Join(latin1, ",")
	}
	for _, sh := range storedHeaders {
		v := h.Get(sh.canon)
		if sh.key == "content-encoding" {
			v = stripAWSChunked(v)
		}
		if v == "" {
			continue
		}
		if meta == nil {
			meta = make(map[string]string, 4)
		}
		meta[sh.key] = v
	}
	if sc := h.Get("X-Amz-Storage-Class"); sc != "" {
		if !slices.Contains(storageClasses, sc) {
			return "", nil, s3err.ErrInvalidStorageClass
		}
		if sc != storageStandard {
			if meta == nil {
				meta = make(map[string]string, 1)
			}
			meta[keyStorageClass] = sc
		}
	}
	return ctype, withACL(meta, acl), nil
}

// keyLatin1Meta lists, comma-separated, the user metadata whose values
// arrived as ISO-8859-1 octets.
const keyLatin1Meta = "x-talus-latin1-meta"

func latin1ToUTF8(s string) string {
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = utf8.AppendRune(b, rune(s[i]))
	}
	return string(b)
}

// utf8ToLatin1 undoes latin1ToUTF8.
func utf8ToLatin1(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

// unsupportedHeaders refuses requests for server-side encryption, object
// lock, tagging and ACL grants: silently storing an object without what
// the client asked for would be worse than saying no. Canned ACLs
// (x-amz-acl) are read by requestACL.
func unsupportedHeaders(h http.Header) error {
	for _, name := range [...]string{
		"X-Amz-Server-Side-Encryption",
		"X-Amz-Server-Side-Encryption-Customer-Algorithm",
		"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id",
		"X-Amz-Object-Lock-Mode",
		"X-Amz-Object-Lock-Retain-Until-Date",
		"X-Amz-Object-Lock-Legal-Hold",
		"X-Amz-Tagging",
		"X-Amz-Grant-Read",
		"X-Amz-Grant-Write",
		"X-Amz-Grant-Read-Acp",
		"X-Amz-Grant-Write-Acp",
		"X-Amz-Grant-Full-Control",
	} {
		if h.Get(name) != "" {
			return s3err.ErrNotImplemented.WithMessage("A header you provided implies functionality that is not implemented: " + name)
		}
	}
	return nil
}

// stripAWSChunked removes the aws-chunked coding, which describes the
// request's framing and not the object.
func stripAWSChunked(v string) string {
	if !strings.Contains(v, "aws-chunked") {
		return v
	}
	var out []string
	for _, c := range strings.Split(v, ",") {
		c = strings.TrimSpace(c)
		if c != "" && c != "aws-chunked" {
			out = append(out, c)
		}
	}
	return strings.Join(out, ",")
}

// setObjectHeaders sets the response headers describing o. checksum adds
// its stored x-amz-checksum-* value, which is only right when the response
// carries the whole object.
func setObjectHeaders(h http.Header, o *metaapi.Object, checksum bool) {
	ct := o.ContentType
	if ct == "" {
		ct = defaultCType
	}
	h["Content-Type"] = []string{ct}
	h["Etag"] = []string{quoteETag(o.ETag)}
	h["Last-Modified"] = []string{o.Modified.UTC().Format(http.TimeFormat)}
	h["Accept-Ranges"] = acceptRanges
	latin1 := o.Meta[keyLatin1Meta]
	for k, v := range o.Meta {
		switch {
		case strings.HasPrefix(k, userMetaPrefix):
			if latin1 != "" && listedIn(latin1, k) {
				v = utf8ToLatin1(v)
			}
			h[k] = []string{v}
		case k == keyStorageClass:
			h[k] = []string{v}
		case strings.HasPrefix(k, "x-amz-checksum-"):
			if checksum && s3checksum.ForHeader(k) != s3checksum.None {
				h[k] = []string{v}
			}
		default:
			for _, sh := range storedHeaders {
				if sh.key == k {
					h[sh.canon] = []string{v}
				}
			}
		}
	}
}

var acceptRanges = []string{"bytes"}

// listedIn reports whether the comma-separated list holds name.
func listedIn(list, name string) bool {
	for list != "" {
		var item string
		item, list, _ = strings.Cut(list, ",")
		if item == name {
			return true
		}
	}
	return false
}

// quoteETag returns an ETag as S3 sends it, in double quotes.
func quoteETag(etag string) string {
	if len(etag) >= 2 && etag[0] == '"' {
		return etag
	}
	return `"` + etag + `"`
}

func unquoteETag(etag string) string {
	etag = strings.TrimSpace(etag)
	etag = strings.TrimPrefix(etag, "W/")
	return strings.Trim(etag, `"`)
}

// etagMatches reports whether an If-Match style list ("a", "b" or *)
// names etag.
func etagMatches(list, etag string) bool {
	etag = unquoteETag(etag)
	for _, c := range strings.Split(list, ",") {
		c = strings.TrimSpace(c)
		if c == "*" || unquoteETag(c) == etag {
			return true
		}
	}
	return false
}

// conditions are the four RFC 7232 preconditions, read from request headers
// (If-Match...) or from their x-amz-copy-source-if-* twins.
type conditions struct {
	ifMatch, ifNoneMatch       string
	ifModified, ifUnmodified   time.Time
	hasModified, hasUnmodified bool
}

func readConditions(h http.Header, prefix string) conditions {
	c := conditions{
		ifMatch:     h.Get(prefix + "If-Match"),
		ifNoneMatch: h.Get(prefix + "If-None-Match"),
	}
	if v := h.Get(prefix + "If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil {
			c.ifModified, c.hasModified = t, true
		}
	}
	if v := h.Get(prefix + "If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil {
			c.ifUnmodified, c.hasUnmodified = t, true
		}
	}
	return c
}

// evaluate applies the preconditions to an object in RFC 7232's order:
// If-Match, else If-Unmodified-Since (412); then If-None-Match, else
// If-Modified-Since (304 for reads; 412 for copies, which pass read=false).
func (c conditions) evaluate(etag string, modified time.Time, read bool) *s3err.Error {
	// HTTP dates have whole seconds.
	modified = modified.Truncate(time.Second)
	if c.ifMatch != "" {
		if !etagMatches(c.ifMatch, etag) {
			return s3err.ErrPreconditionFailed
		}
	} else if c.hasUnmodified && modified.After(c.ifUnmodified) {
		return s3err.ErrPreconditionFailed
	}
	notModified := s3err.ErrNotModified
	if !read {
		notModified = s3err.ErrPreconditionFailed
	}
	if c.ifNoneMatch != "" {
		if etagMatches(c.ifNoneMatch, etag) {
			return notModified
		}
	} else if c.hasModified && !modified.After(c.ifModified) {
		return notModified
	}
	return nil
}

// parseRange interprets a Range header for an object of size bytes. ok is
// false when the header is absent or not a single byte range, which S3
// (like RFC 7233) answers with the whole object.
func parseRange(v string, size int64) (off, n int64, ok bool, err error) {
	spec, found := strings.CutPrefix(v, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, nil
	}
	if first == "" {
		k, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || k < 0 {
			return 0, 0, false, nil
		}
		if k == 0 || size == 0 {
			return 0, 0, false, s3err.ErrInvalidRange
		}
		k = min(k, size)
		return size - k, k, true, nil
	}
	start, perr := strconv.ParseInt(first, 10, 64)
	if perr != nil || start < 0 {
		return 0, 0, false, nil
	}
	end := size - 1
	if last != "" {
		e, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || e < start {
			return 0, 0, false, nil
		}
		end = min(e, size-1)
	}
	if start >= size {
		return 0, 0, false, s3err.ErrInvalidRange
	}
	return start, end - start + 1, true, nil
}

// xmlBufs recycles the buffers XML answers are rendered into.
var xmlBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeXML sends v as an XML document with the given status.
func writeXML(q *request, status int, v any) error {
	buf := xmlBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 4<<20 {
			buf.Reset()
			xmlBufs.Put(buf)
		}
	}()
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(buf).Encode(v); err != nil {
		return err
	}
	h := q.w.Header()
	h["Content-Type"] = xmlContentType
	h["Content-Length"] = []string{strconv.Itoa(buf.Len())}
	q.w.WriteHeader(status)
	if q.r.Method != http.MethodHead {
		q.w.Write(buf.Bytes())
	}
	return nil
}

var xmlContentType = []string{"application/xml"}

// s3Time formats a time as S3's XML documents do.
func s3Time(t time.Time) string { return t.UTC().Format(iso8601Millis) }

// readXML decodes a request's XML body of at most max bytes into v. The
// body is read whole first (it is small), so that its checksums and
// signatures are verified before anything acts on it.
func readXML(q *request, max int64, v any) error {
	data, err := readSmallBody(q.body(), q.bodyLength(), max)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return s3err.ErrMalformedXML.WithMessage("The request body is empty.")
	}
	if err := xml.Unmarshal(data, v); err != nil {
		return s3err.ErrMalformedXML.WithCause(err)
	}
	return nil
}

// readSmallBody reads a request body of declared length (-1: unknown) that
// must not exceed max bytes.
func readSmallBody(body io.Reader, declared, max int64) ([]byte, error) {
	if declared > max {
		return nil, s3err.ErrMaxMessageLengthExceeded
	}
	data, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, s3err.ErrMaxMessageLengthExceeded
	}
	return data, nil
}
