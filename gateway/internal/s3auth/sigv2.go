package s3auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/talusfs/talus/gateway/internal/s3err"
)

// Signature Version 2 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html):
//
//	Authorization: AWS <access key>:<base64 HMAC-SHA1(secret, StringToSign)>
//
// or, presigned, the query parameters AWSAccessKeyId, Expires (Unix
// seconds) and Signature, where
//
//	StringToSign = Method \n Content-MD5 \n Content-Type \n Date-or-Expires \n
//	               CanonicalizedAmzHeaders CanonicalizedResource
//
// V2 signs no payload hash; a body is as good as its Content-MD5, if any.

const algorithmV2 = "AWS"

var (
	errV2Malformed       = s3err.ErrInvalidArgument.WithMessage("AWS authorization header is invalid.  Expected AwsAccessKeyId:signature")
	errV2QueryMissing    = s3err.ErrAccessDenied.WithMessage("Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
	errV2QueryExpires    = s3err.ErrAccessDenied.WithMessage("Invalid date (should be seconds since epoch)")
	errV2NoDate          = s3err.ErrMissingDate
	errV2DateBeforeEpoch = s3err.ErrAccessDenied.WithMessage("AWS authentication requires a valid Date or x-amz-date header")
)

// signatureV2 is a parsed Signature Version 2.
type signatureV2 struct {
	presigned bool
	accessKey string
	sig       [sha1.Size]byte
	sigOK     bool   // the client's signature was well-formed base64
	date      string // the Date line: the Date header, or Expires
}

// verifyV2 authenticates a request signed with Signature Version 2, in the
// Authorization header (authz) or, if authz is "", in the query.
func (v *Verifier) verifyV2(r *http.Request, q params, authz string) (*Result, error) {
	var s signatureV2
	var err error
	if authz != "" {
		err = v.parseV2Header(&s, authz, r.Header)
	} else {
		err = v.parseV2Query(&s, q)
	}
	if err != nil {
		return nil, err
	}
	// Not signed, but a body declaring its SHA-256 must match it.
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = unsignedPayload
	} else if err := checkPayloadHash(payload); err != nil {
		return nil, err
	}

	secret, err := v.lookup(r.Context(), s.accessKey)
	if err != nil {
		return nil, err
	}
	// Signers disagree on details that sign the same facts: where
	// x-amz-date goes when it is sent (with the other x-amz headers, as
	// botocore and MinIO have it, or in the Date line, as in AWS's own
	// examples), and whether a path-style request for a bucket signs
	// "/bucket" as sent or "/bucket/" (botocore), the resource of the
	// same request in virtual-host style. Those variants are tried when
	// the canonical form fails.
	ok := false
	if s.sigOK {
		amzDate := !s.presigned && r.Header.Get("X-Amz-Date") != ""
		slash := v.bucketOnlyPath(r)
		for _, f := range [...]v2Form{{}, {amzDateInDateLine: true}, {bucketSlash: true}, {amzDateInDateLine: true, bucketSlash: true}} {
			if f.amzDateInDateLine && !amzDate || f.bucketSlash && !slash {
				continue
			}
			if ok = v.matchV2(r, q, &s, secret, f); ok {
				break
			}
		}
	}
	if !ok {
		return nil, s3err.ErrSignatureDoesNotMatch
	}

	res := &Result{AccessKey: s.accessKey, Presigned: s.presigned}
	if err := v.attachBody(r, res, payload, nil); err != nil {
		return nil, err
	}
	return res, nil
}

// parseV2Header parses "AWS <access key>:<signature>" and checks the
// request time, from x-amz-date or Date.
func (v *Verifier) parseV2Header(s *signatureV2, authz string, h http.Header) error {
	cred, ok := strings.CutPrefix(authz, algorithmV2+" ")
	if !ok {
		return errV2Malformed
	}
	// Base64 has no ':'; access keys might.
	i := strings.LastIndexByte(cred, ':')
	if i <= 0 || i == len(cred)-1 {
		return errV2Malformed
	}
	s.accessKey = cred[:i]
	s.sig, s.sigOK = decodeV2Signature(cred[i+1:])
	s.date = h.Get("Date")

	d, hasAmzDate := h["X-Amz-Date"]
	var t time.Time
	var err error
	switch {
	case hasAmzDate:
		t, err = parseHTTPDate(d[0])
	case s.date != "":
		t, err = parseHTTPDate(s.date)
	default:
		return errV2NoDate
	}
	if err != nil {
		return errV2NoDate
	}
	if t.Before(time.Unix(0, 0)) {
		return errV2DateBeforeEpoch
	}
	now := v.now()
	if d := now.Sub(t); d > v.maxSkew() || d < -v.maxSkew() {
		return s3err.ErrRequestTimeTooSkewed
	}
	return nil
}

// parseV2Query parses the AWSAccessKeyId, Expires and Signature query
// parameters and checks that the URL has not expired.
func (v *Verifier) parseV2Query(s *signatureV2, q params) error {
	ak, ok1 := q.get("AWSAccessKeyId")
	exp, ok2 := q.get("Expires")
	sig, ok3 := q.get("Signature")
	if !ok1 || !ok2 || !ok3 || ak == "" {
		return errV2QueryMissing
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return errV2QueryExpires
	}
	if v.now().Unix() > secs {
		return s3err.ErrExpiredPresignedRequest
	}
	s.presigned = true
	s.accessKey = ak
	s.date = exp
	s.sig, s.sigOK = decodeV2Signature(sig)
	return nil
}

func decodeV2Signature(b64 string) (out [sha1.Size]byte, ok bool) {
	if base64.StdEncoding.DecodedLen(len(b64)) > sha1.Size+2 {
		return out, false
	}
	var buf [sha1.Size + 2]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(b64))
	if err != nil || n != sha1.Size {
		return out, false
	}
	copy(out[:], buf[:n])
	return out, true
}

// v2Form selects a variant of the string to sign.
type v2Form struct {
	// amzDateInDateLine: x-amz-date's value in the Date line and not among
	// the x-amz headers.
	amzDateInDateLine bool
	// bucketSlash: "/bucket/" for a path-style request of "/bucket".
	bucketSlash bool
}

// bucketOnlyPath reports whether r is a path-style request naming only a
// bucket, without the trailing slash.
func (v *Verifier) bucketOnlyPath(r *http.Request) bool {
	p := requestPath(r)
	return len(p) > 1 && strings.IndexByte(p[1:], '/') < 0 && v.hostBucket(r.Host) == ""
}

// requestPath is r's path as the client sent it.
func requestPath(r *http.Request) string {
	path := r.URL.EscapedPath()
	if uri := r.RequestURI; strings.HasPrefix(uri, "/") {
		path, _, _ = strings.Cut(uri, "?")
	}
	if path == "" {
		path = "/"
	}
	return path
}

// matchV2 computes the signature the client should have sent and compares
// it with s's.
func (v *Verifier) matchV2(r *http.Request, q params, s *signatureV2, secret string, f v2Form) bool {
	bp := v.getBuf()
	defer v.putBuf(bp)
	buf := v.appendStringToSignV2((*bp)[:0], r, q, s, f)
	*bp = buf
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(buf)
	var sum [sha1.Size]byte
	mac.Sum(sum[:0])
	return hmac.Equal(sum[:], s.sig[:])
}

// appendStringToSignV2 appends the V2 string to sign.
func (v *Verifier) appendStringToSignV2(dst []byte, r *http.Request, q params, s *signatureV2, f v2Form) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, '\n')
	for _, name := range [...]string{"Content-Md5", "Content-Type"} {
		val := r.Header.Get(name)
		if val == "" && s.presigned {
			// Signers of URLs move these headers into the query.
			val, _ = q.get(strings.ToLower(name))
		}
		dst = append(dst, strings.TrimSpace(val)...)
		dst = append(dst, '\n')
	}
	date := s.date
	if f.amzDateInDateLine {
		date = r.Header.Get("X-Amz-Date")
	}
	dst = append(dst, date...)
	dst = append(dst, '\n')
	dst = appendAmzHeadersV2(dst, r.Header, q, s.presigned, f.amzDateInDateLine)
	return v.appendResourceV2(dst, r, q, f.bucketSlash)
}

// appendAmzHeadersV2 appends the x-amz-* headers, lower-cased and sorted,
// one "name:value\n" each, the values of a repeated header joined by ','.
// Presigned URLs may carry them as query parameters instead (an
// x-amz-security-token, say).
func appendAmzHeadersV2(dst []byte, h http.Header, q params, presigned, skipAmzDate bool) []byte {
	type field struct{ name, value string }
	var arr [16]field
	fields := arr[:0]
	for name, vals := range h {
		if len(name) <= len("x-amz-") || !strings.EqualFold(name[:len("x-amz-")], "x-amz-") {
			continue
		}
		if skipAmzDate && strings.EqualFold(name, "x-amz-date") {
			continue
		}
		for _, val := range vals {
			fields = append(fields, field{strings.ToLower(name), strings.TrimSpace(val)})
		}
	}
	if presigned {
		for _, p := range q {
			if len(p.key) > len("x-amz-") && strings.EqualFold(p.key[:len("x-amz-")], "x-amz-") {
				fields = append(fields, field{strings.ToLower(p.key), strings.TrimSpace(p.value)})
			}
		}
	}
	// Stable, so that repeated headers keep their order.
	slices.SortStableFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
	for i, f := range fields {
		if i > 0 && fields[i-1].name == f.name {
			dst = append(dst[:len(dst)-1], ',')
		} else {
			dst = append(dst, f.name...)
			dst = append(dst, ':')
		}
		dst = append(dst, f.value...)
		dst = append(dst, '\n')
	}
	return dst
}

// subresourcesV2 are the query parameters V2 signs, as the AWS SDKs that
// still sign V2 (botocore) list them.
var subresourcesV2 = []string{
	"accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory",
	"lifecycle", "location", "logging", "metrics", "notification", "object-lock",
	"partNumber", "policy", "replication", "requestPayment", "response-cache-control",
	"response-content-disposition", "response-content-encoding", "response-content-language",
	"response-content-type", "response-expires", "restore", "select", "select-type",
	"storageClass", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
	"versions", "website",
}

// appendResourceV2 appends the CanonicalizedResource: "/bucket" for a
// virtual-host-style request, the path as sent, and the signed
// subresources sorted by name, with their decoded values.
func (v *Verifier) appendResourceV2(dst []byte, r *http.Request, q params, bucketSlash bool) []byte {
	if b := v.hostBucket(r.Host); b != "" {
		dst = append(dst, '/')
		dst = append(dst, b...)
	}
	dst = append(dst, requestPath(r)...)
	if bucketSlash {
		dst = append(dst, '/')
	}

	var arr [8]param
	subs := arr[:0]
	for _, p := range q {
		if _, ok := slices.BinarySearch(subresourcesV2, p.key); ok {
			subs = append(subs, p)
		}
	}
	slices.SortStableFunc(subs, func(a, b param) int { return strings.Compare(a.key, b.key) })
	for i, p := range subs {
		if i == 0 {
			dst = append(dst, '?')
		} else {
			dst = append(dst, '&')
		}
		dst = append(dst, p.key...)
		if p.eq {
			dst = append(dst, '=')
			dst = append(dst, p.value...)
		}
	}
	return dst
}

// hostBucket returns the bucket a virtual-host-style Host names, "" if it
// does not name one.
func (v *Verifier) hostBucket(host string) string {
	d := v.Domain
	if d == "" {
		return ""
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if len(host) > len(d)+1 && host[len(host)-len(d)-1] == '.' && strings.EqualFold(host[len(host)-len(d):], d) {
		return host[:len(host)-len(d)-1]
	}
	return ""
}

// parseHTTPDate reads a Date (or V2 x-amz-date) header: the three forms
// HTTP allows, and RFC 1123 with a numeric zone, which clients write too
// (Python's email.utils.formatdate: "Tue, 15 Nov 1994 08:12:31 -0000").
func parseHTTPDate(v string) (time.Time, error) {
	t, err := http.ParseTime(v)
	if err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC1123Z, v); err == nil {
		return t.UTC(), nil
	}
	if s, ok := strings.CutSuffix(v, " UTC"); ok {
		if t, err := time.Parse(time.RFC1123Z, s+" +0000"); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}
