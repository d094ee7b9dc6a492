package gateway

import (
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/gateway/internal/s3checksum"
	"github.com/talusfs/talus/gateway/internal/s3err"
	"github.com/talusfs/talus/meta/metaapi"
)

// checkKey applies S3's key rules to a key about to be written.
func checkKey(key string) error {
	if len(key) > metaapi.MaxKeyLen {
		return s3err.ErrKeyTooLong
	}
	if err := metaapi.ValidateKey(key); err != nil {
		return s3err.ErrInvalidArgument.WithMessage("Object key must be 1 to 1024 bytes of valid UTF-8.").WithCause(err)
	}
	return nil
}

// checkVersionID accepts only the version every object has in a bucket
// that never had versioning: "null".
func checkVersionID(q *request) error {
	if !strings.Contains(q.r.URL.RawQuery, "versionId") {
		return nil
	}
	if v := q.param("versionId"); v != "" && v != "null" {
		return s3err.ErrInvalidArgument.WithMessage("Invalid version id specified")
	}
	return nil
}

// bodyChecksum is what a request body's checksums turn out to be.
type bodyChecksum struct {
	alg   s3checksum.Algorithm
	value func() string // the base64 value; complete once the body is read
	md5   []byte        // declared Content-MD5 left for the client to check
}

// verifiedBody wraps q's body so that reading it verifies an
// x-amz-checksum-* header (s3auth already verifies a trailing checksum), and
// records the checksum in meta under its header name before the body
// reports its end. Put and PutPart commit only after that end, so the
// object never exists without its checksum, nor with a wrong one. meta may
// be nil; the returned map is the one to store.
//
// Content-MD5 is verified by the body reader too, unless clientMD5 is set:
// then it is only decoded into bodyChecksum.md5 for the native client, which
// computes the MD5 for the ETag anyway and checks it before committing, so
// the body is not hashed twice.
func verifiedBody(q *request, meta map[string]string, clientMD5 bool) (io.Reader, map[string]string, bodyChecksum, error) {
	body := q.body()
	h := q.r.Header
	var wantMD5 []byte
	if v, ok := h["Content-Md5"]; ok {
		if len(v) != 1 || v[0] == "" {
			return nil, nil, bodyChecksum{}, s3err.ErrInvalidDigest
		}
		if clientMD5 {
			sum, ok := s3checksum.MD5.Decode(v[0])
			if !ok {
				return nil, nil, bodyChecksum{}, s3err.ErrInvalidDigest
			}
			wantMD5 = sum
		} else {
			r, err := s3checksum.NewReader(body, s3checksum.MD5, v[0])
			if err != nil {
				return nil, nil, bodyChecksum{}, err
			}
			body = r
		}
	}
	alg, value, err := s3checksum.FromHeader(h)
	if err != nil {
		return nil, nil, bodyChecksum{}, err
	}
	switch {
	case alg != s3checksum.None:
		r, err := s3checksum.NewReader(body, alg, value)
		if err != nil {
			return nil, nil, bodyChecksum{}, err
		}
		if meta == nil {
			meta = make(map[string]string, 1)
		}
		meta[alg.Header()] = value
		return r, meta, bodyChecksum{alg: alg, value: func() string { return value }, md5: wantMD5}, nil
	case q.auth != nil && q.auth.TrailerChecksum != s3checksum.None:
		alg := q.auth.TrailerChecksum
		if meta == nil {
			meta = make(map[string]string, 1)
		}
		res := q.auth
		m := meta
		r := &eofHook{r: body, hook: func() { m[alg.Header()] = res.TrailerChecksumValue() }}
		return r, meta, bodyChecksum{alg: alg, value: res.TrailerChecksumValue, md5: wantMD5}, nil
	}
	return body, meta, bodyChecksum{md5: wantMD5}, nil
}

// eofHook calls hook in the Read that reports io.EOF, before returning it.
type eofHook struct {
	r    io.Reader
	hook func()
	err  error
}

func (e *eofHook) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.r.Read(p)
	if err != nil {
		if err == io.EOF {
			e.hook()
		}
		e.err = err
	}
	return n, err
}

func (g *Gateway) putObject(q *request) error {
	if err := checkKey(q.key); err != nil {
		return err
	}
	if err := g.authorize(q, q.bucket, permWrite); err != nil {
		return err
	}
	ctype, meta, err := objectAttrs(q.r.Header)
	if err != nil {
		return err
	}
	body, meta, sum, err := verifiedBody(q, meta, true)
	if err != nil {
		return err
	}
	body, size, err := putBody(q, body)
	if err != nil {
		return err
	}
	opts := client.PutOptions{
		ContentType: ctype,
		Meta:        meta,
		Cond:        metaapi.Preconditions{IfMatch: q.r.Header.Get("If-Match"), IfNoneMatch: q.r.Header.Get("If-None-Match")},
		MD5:         sum.md5,
	}
	obj, err := g.c.Put(q.ctx(), q.bucket, q.key, body, size, opts)
	if err != nil {
		return g.condError(q, opts.Cond, err)
	}
	h := q.w.Header()
	h["Etag"] = []string{quoteETag(obj.ETag)}
	if sum.alg != s3checksum.None {
		h[sum.alg.Header()] = []string{sum.value()}
	}
	h["Content-Length"] = zeroLength
	q.w.WriteHeader(http.StatusOK)
	return nil
}

// putBody returns the body of a PUT and its length, -1 if the client
// streams it without saying (Transfer-Encoding: chunked). Either way it may
// not exceed S3's limit for one PUT.
func putBody(q *request, body io.Reader) (io.Reader, int64, error) {
	size := q.bodyLength()
	switch {
	case size > maxPutSize:
		return nil, 0, s3err.ErrEntityTooLarge
	case size < 0:
		return &capReader{r: body, left: maxPutSize}, -1, nil
	}
	return body, size, nil
}

// capReader fails a body that goes on past left bytes.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, s3err.ErrEntityTooLarge
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, s3err.ErrEntityTooLarge
	}
	return n, err
}

// condError refines a failed conditional write: If-Match on a key that
// does not exist is NoSuchKey, not PreconditionFailed.
func (g *Gateway) condError(q *request, cond metaapi.Preconditions, err error) error {
	if cond.IfMatch == "" || !errors.Is(err, metaapi.ErrPrecondition) {
		return err
	}
	if _, herr := g.c.Head(q.ctx(), q.bucket, q.key); errors.Is(herr, metaapi.ErrNoSuchKey) {
		return s3err.ErrNoSuchKey
	}
	return err
}

func (g *Gateway) getObject(q *request) error  { return g.readObject(q, true) }
func (g *Gateway) headObject(q *request) error { return g.readObject(q, false) }

// readObject answers GET and HEAD: preconditions, ranges and parts,
// response header overrides, and the body streamed from the cluster.
func (g *Gateway) readObject(q *request, withBody bool) error {
	a, err := g.access(q, q.bucket)
	if err != nil {
		return err
	}
	if err := checkVersionID(q); err != nil {
		return err
	}
	obj, err := g.meta.Object(q.ctx(), q.bucket, q.key)
	if err := a.mayRead(q, &obj, err); err != nil {
		return err
	}
	h := q.w.Header()
	rh := q.r.Header
	if e := readConditions(rh, "").evaluate(obj.ETag, obj.Modified, true); e != nil {
		if errors.Is(e, s3err.ErrNotModified) {
			h["Etag"] = []string{quoteETag(obj.ETag)}
			h["Last-Modified"] = []string{obj.Modified.UTC().Format(http.TimeFormat)}
			q.w.WriteHeader(http.StatusNotModified)
			return nil
		}
		return e
	}

	off, n := int64(0), obj.Size
	partial := false
	rangeHeader := rh.Get("Range")
	if strings.Contains(q.r.URL.RawQuery, "partNumber") && q.hasParam("partNumber") {
		if rangeHeader != "" {
			return s3err.ErrInvalidRequest.WithMessage("Cannot specify both Range header and partNumber query parameter")
		}
		var count int
		if off, n, count, err = partRange(&obj, q.param("partNumber")); err != nil {
			return err
		}
		if strings.Contains(obj.ETag, "-") {
			h["X-Amz-Mp-Parts-Count"] = []string{strconv.Itoa(count)}
		}
		partial = true
	} else if rangeHeader != "" {
		roff, rn, ok, err := parseRange(rangeHeader, obj.Size)
		if err != nil {
			h["Content-Range"] = []string{"bytes */" + strconv.FormatInt(obj.Size, 10)}
			return err
		}
		if ok {
			off, n, partial = roff, rn, true
		}
	}

	whole := off == 0 && n == obj.Size
	setObjectHeaders(h, &obj, whole && strings.EqualFold(rh.Get("X-Amz-Checksum-Mode"), "ENABLED"))
	if strings.Contains(q.r.URL.RawQuery, "response-") {
		overrideHeaders(q, h)
	}
	h["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h["Content-Range"] = []string{contentRange(off, n, obj.Size)}
	}
	if !withBody || n == 0 {
		q.w.WriteHeader(status)
		return nil
	}
	rd, err := g.c.Open(q.ctx(), obj, off, n)
	if err != nil {
		return err
	}
	defer rd.Close()
	q.w.WriteHeader(status)
	if _, err := io.Copy(q.w, rd); err != nil {
		if q.ctx().Err() == nil {
			g.log.Error("s3 GET failed mid-stream", "request", q.id, "resource", q.resource(), "err", err)
		}
		return errStreamAborted
	}
	return nil
}

func contentRange(off, n, size int64) string {
	b := make([]byte, 0, 64)
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, off, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, off+n-1, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, size, 10)
	return string(b)
}

// partRange finds part number pn of an object: the whole object for one
// that was not uploaded in parts, else the part's bytes as recorded at
// completion.
func partRange(obj *metaapi.Object, pn string) (off, n int64, count int, err error) {
	num, perr := strconv.Atoi(pn)
	if perr != nil || num < 1 || num > metaapi.MaxPartNumber {
		return 0, 0, 0, s3err.ErrInvalidArgument.WithMessage("Part number must be an integer between 1 and 10000, inclusive")
	}
	count = 1
	if i := strings.LastIndexByte(obj.ETag, '-'); i >= 0 {
		if c, err := strconv.Atoi(obj.ETag[i+1:]); err == nil && c > 0 {
			count = c
		}
	}
	if num > count {
		// S3 documents 416 InvalidPartNumber; Ceph's s3-tests, which S3
		// tools are checked against, expect what RGW sends.
		return 0, 0, count, s3err.ErrInvalidPart.WithMessage("The requested partnumber is not satisfiable")
	}
	if count == 1 {
		return 0, obj.Size, count, nil
	}
	sizes := obj.Meta[metaapi.MetaPartSizes]
	for i := 1; sizes != ""; i++ {
		var s string
		s, sizes, _ = strings.Cut(sizes, ",")
		size, err := strconv.ParseInt(s, 10, 64)
		if err != nil || size < 0 {
			break
		}
		if i == num {
			if off+size > obj.Size {
				break
			}
			return off, size, count, nil
		}
		off += size
	}
	return 0, 0, count, s3err.ErrNotImplemented.WithMessage("This object's part boundaries are not recorded; use a Range request.")
}

// overrideHeaders applies the response-* query parameters.
func overrideHeaders(q *request, h http.Header) {
	for _, o := range [...]struct{ param, header string }{
		{"response-content-type", "Content-Type"},
		{"response-content-language", "Content-Language"},
		{"response-expires", "Expires"},
		{"response-cache-control", "Cache-Control"},
		{"response-content-disposition", "Content-Disposition"},
		{"response-content-encoding", "Content-Encoding"},
	} {
		if v := q.param(o.param); v != "" {
			h[o.header] = []string{v}
		}
	}
}

func (g *Gateway) deleteObject(q *request) error {
	if err := g.authorize(q, q.bucket, permWrite); err != nil {
		return err
	}
	if err := checkVersionID(q); err != nil {
		return err
	}
	cond := metaapi.Preconditions{IfMatch: q.r.Header.Get("If-Match")}
	if err := g.meta.DeleteObject(q.ctx(), q.bucket, q.key, cond); err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseCopySource splits x-amz-copy-source ("[/]bucket/key[?versionId=v]",
// URL-encoded) into bucket and key.
func parseCopySource(v string) (bucket, key string, err error) {
	src, version, _ := strings.Cut(v, "?versionId=")
	if version != "" && version != "null" {
		return "", "", s3err.ErrInvalidArgument.WithMessage("Invalid version id specified")
	}
	src, uerr := url.PathUnescape(src)
	if uerr != nil {
		return "", "", s3err.ErrInvalidArgument.WithMessage("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	bucket, key, ok := strings.Cut(strings.TrimPrefix(src, "/"), "/")
	if !ok || bucket == "" || key == "" {
		return "", "", s3err.ErrInvalidArgument.WithMessage("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	return bucket, key, nil
}

// copySource resolves and authorizes a request's copy source, fetches its
// record and applies the x-amz-copy-source-if-* conditions. The returned
// preconditions pin the copy to exactly the version fetched.
func (g *Gateway) copySource(q *request) (bucket, key string, src *metaapi.Object, cond metaapi.Preconditions, err error) {
	bucket, key, err = parseCopySource(q.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return "", "", nil, cond, err
	}
	a, err := g.access(q, bucket)
	if err != nil {
		return "", "", nil, cond, err
	}
	conds := readConditions(q.r.Header, "X-Amz-Copy-Source-")
	o, err := g.c.Head(q.ctx(), bucket, key)
	if err := a.mayRead(q, &o, err); err != nil {
		return "", "", nil, cond, err
	}
	if e := conds.evaluate(o.ETag, o.Modified, false); e != nil {
		return "", "", nil, cond, e
	}
	return bucket, key, &o, metaapi.Preconditions{IfMatch: o.ETag}, nil
}

// Meta keys that describe an object's bytes rather than the object, and so
// survive a copy that replaces its metadata.
func isDataMeta(k string) bool {
	return k == metaapi.MetaPartSizes || s3checksum.ForHeader(k) != s3checksum.None
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyObjectResult"`
	LastModified string
	ETag         string
}

func (g *Gateway) copyObject(q *request) error {
	if err := checkKey(q.key); err != nil {
		return err
	}
	if err := g.authorize(q, q.bucket, permWrite); err != nil {
		return err
	}
	if err := checkVersionID(q); err != nil {
		return err
	}
	replace := false
	switch d := q.r.Header.Get("X-Amz-Metadata-Directive"); d {
	case "", "COPY":
	case "REPLACE":
		replace = true
	default:
		return s3err.ErrInvalidArgument.WithMessage("Unknown metadata directive.")
	}
	srcBucket, srcKey, src, srcCond, err := g.copySource(q)
	if err != nil {
		return err
	}
	req := metaapi.CopyRequest{
		SrcBucket: srcBucket, SrcKey: srcKey, SrcCond: srcCond,
		DstBucket: q.bucket, DstKey: q.key,
		DstCond: metaapi.Preconditions{IfMatch: q.r.Header.Get("If-Match"), IfNoneMatch: q.r.Header.Get("If-None-Match")},
		// The metadata comes from this request (REPLACE) or from the
		// source record fetched (COPY), but never the source's ACL: a
		// copy gets the ACL the request asks for, private by default.
		ReplaceMeta: true,
	}
	if replace {
		if req.ContentType, req.Meta, err = objectAttrs(q.r.Header); err != nil {
			return err
		}
		for k, v := range src.Meta {
			if isDataMeta(k) {
				if req.Meta == nil {
					req.Meta = make(map[string]string, 2)
				}
				req.Meta[k] = v
			}
		}
	} else {
		if srcBucket == q.bucket && srcKey == q.key {
			return s3err.ErrInvalidRequest.WithMessage("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
		}
		if err := unsupportedHeaders(q.r.Header); err != nil {
			return err
		}
		acl, err := requestACL(q.r.Header)
		if err != nil {
			return err
		}
		req.ContentType = src.ContentType
		req.Meta = withACL(maps.Clone(src.Meta), acl)
	}
	obj, err := g.c.Copy(q.ctx(), req)
	if err != nil {
		return err
	}
	return writeXML(q, http.StatusOK, &copyObjectResult{LastModified: s3Time(obj.Modified), ETag: quoteETag(obj.ETag)})
}

func (g *Gateway) getObjectACL(q *request) error {
	if err := g.authorize(q, q.bucket, permOwner); err != nil {
		return err
	}
	obj, err := g.c.Head(q.ctx(), q.bucket, q.key)
	if err != nil {
		return err
	}
	b, err := g.buckets.get(q.ctx(), q.bucket)
	if err != nil {
		return err
	}
	return writeXML(q, http.StatusOK, policyFor(ownerOf(g.ownerID(b.owner)), objectACL(&obj)))
}

// putObjectACL changes an object's canned ACL by copying the object onto
// itself with the new ACL in its metadata: no data moves, but, unlike in
// S3, the object's Last-Modified time does.
func (g *Gateway) putObjectACL(q *request) error {
	if err := g.authorize(q, q.bucket, permOwner); err != nil {
		return err
	}
	if err := checkVersionID(q); err != nil {
		return err
	}
	obj, err := g.c.Head(q.ctx(), q.bucket, q.key)
	if err != nil {
		return err
	}
	b, err := g.buckets.get(q.ctx(), q.bucket)
	if err != nil {
		return err
	}
	acl, err := g.aclRequest(q, g.ownerID(b.owner))
	if err != nil {
		return err
	}
	if acl != objectACL(&obj) {
		_, err := g.c.Copy(q.ctx(), metaapi.CopyRequest{
			SrcBucket: q.bucket, SrcKey: q.key, SrcCond: metaapi.Preconditions{IfMatch: obj.ETag},
			DstBucket: q.bucket, DstKey: q.key,
			ReplaceMeta: true, ContentType: obj.ContentType, Meta: withACL(maps.Clone(obj.Meta), acl),
		})
		if errors.Is(err, metaapi.ErrPrecondition) {
			// Overwritten meanwhile: the new object is not the one
			// whose ACL was asked for.
			return s3err.ErrOperationAborted.WithCause(err)
		}
		if err != nil {
			return err
		}
	}
	q.w.Header()["Content-Length"] = zeroLength
	q.w.WriteHeader(http.StatusOK)
	return nil
}

type tagging struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ Tagging"`
	TagSet  struct{}
}

// getObjectTagging answers that the object has no tags, which is true:
// talus stores none.
func (g *Gateway) getObjectTagging(q *request) error {
	if err := g.authorize(q, q.bucket, permOwner); err != nil {
		return err
	}
	if _, err := g.c.Head(q.ctx(), q.bucket, q.key); err != nil {
		return err
	}
	return writeXML(q, http.StatusOK, &tagging{})
}
