package s3auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talusfs/talus/gateway/internal/s3err"
)

const (
	algorithmV4   = "AWS4-HMAC-SHA256"
	algorithmV4a  = "AWS4-ECDSA-P256-SHA256"
	iso8601Format = "20060102T150405Z"
	yyyymmdd      = "20060102"

	// maxExpires is the longest validity S3 allows a presigned URL: a week.
	maxExpires = 7 * 24 * time.Hour
)

// signature is a parsed SigV4 signature, from a header or a query.
type signature struct {
	presigned bool

	accessKey string
	date      string // yyyymmdd, from the credential scope
	region    string
	scope     string // date/region/s3/aws4_request, as the client wrote it

	amzDate string    // ISO 8601 basic timestamp, as signed
	time    time.Time // amzDate parsed
	expires time.Duration

	signedHeaders string // "host;x-amz-date", as the client wrote it
	sig           [32]byte
	sigOK         bool // the client's signature was well-formed hex
}

// matches compares the client's signature with want in constant time.
func (s *signature) matches(want [32]byte) bool {
	return s.sigOK && hmac.Equal(s.sig[:], want[:])
}

func errMalformedHeader(detail string) error {
	return s3err.ErrAuthorizationHeaderMalformed.WithMessage("The authorization header is malformed; " + detail)
}

func errMalformedQuery(detail string) error {
	return s3err.ErrAuthorizationQueryParametersError.WithMessage(detail)
}

// parseAuthorization parses into s an Authorization header of the form
//
//	AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=<hex>
//
// and the request time, from x-amz-date or Date.
func parseAuthorization(s *signature, authz string, h http.Header) error {
	scheme, rest, _ := strings.Cut(authz, " ")
	switch scheme {
	case algorithmV4:
	case algorithmV4a:
		return errUnsupportedMechanism
	default:
		return errUnsupportedAuthType
	}
	var cred, signed, sigHex string
	var haveCred, haveSigned, haveSig bool
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		switch {
		case !ok:
			return errMalformedHeader("the authorization component " + strconv.Quote(part) + " is malformed.")
		case k == "Credential" && !haveCred:
			cred, haveCred = v, true
		case k == "SignedHeaders" && !haveSigned:
			signed, haveSigned = v, true
		case k == "Signature" && !haveSig:
			sigHex, haveSig = v, true
		default:
			return errMalformedHeader("the authorization component " + strconv.Quote(part) + " is malformed.")
		}
	}
	switch {
	case !haveCred:
		return errMalformedHeader("missing Credential.")
	case !haveSigned || signed == "":
		return errMalformedHeader("missing SignedHeaders.")
	case !haveSig:
		return errMalformedHeader("missing Signature.")
	}
	if detail := s.parseCredential(cred); detail != "" {
		return errMalformedHeader(detail)
	}
	s.signedHeaders = signed
	s.sig, s.sigOK = decodeSignature(sigHex)

	// x-amz-date wins over Date; the string to sign always carries the
	// ISO 8601 form.
	if d := h.Get("X-Amz-Date"); d != "" {
		t, err := time.Parse(iso8601Format, d)
		if err != nil {
			return s3err.ErrMissingDate
		}
		s.amzDate, s.time = d, t
	} else if d := h.Get("Date"); d != "" {
		t, err := parseHTTPDate(d)
		if err != nil {
			return s3err.ErrMissingDate
		}
		s.time = t.UTC()
		s.amzDate = s.time.Format(iso8601Format)
	} else {
		return s3err.ErrMissingDate
	}
	if s.amzDate[:8] != s.date {
		return errMalformedHeader("Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	return nil
}

// parsePresigned parses into s the X-Amz-* query parameters of a
// presigned URL.
func parsePresigned(s *signature, q params) error {
	alg, ok1 := q.get("X-Amz-Algorithm")
	cred, ok2 := q.get("X-Amz-Credential")
	sigHex, ok3 := q.get("X-Amz-Signature")
	date, ok4 := q.get("X-Amz-Date")
	signed, ok5 := q.get("X-Amz-SignedHeaders")
	expires, ok6 := q.get("X-Amz-Expires")
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return errMalformedQuery("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
	}
	switch alg {
	case algorithmV4:
	case algorithmV4a:
		return errUnsupportedMechanism
	default:
		return errMalformedQuery(`X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"`)
	}
	s.presigned = true
	if detail := s.parseCredential(cred); detail != "" {
		return errMalformedQuery("Error parsing the X-Amz-Credential parameter; " + detail)
	}
	t, err := time.Parse(iso8601Format, date)
	if err != nil {
		return errMalformedQuery(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`)
	}
	s.amzDate, s.time = date, t
	if date[:8] != s.date {
		return errMalformedQuery("Invalid credential date " + strconv.Quote(s.date) + ". This date is not the same as X-Amz-Date: " + strconv.Quote(date[:8]) + ".")
	}
	secs, err := strconv.ParseInt(expires, 10, 64)
	switch {
	case err != nil:
		return errMalformedQuery("X-Amz-Expires should be a number")
	case secs < 0:
		return errMalformedQuery("X-Amz-Expires must be non-negative")
	case secs > int64(maxExpires/time.Second):
		return errMalformedQuery("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds")
	}
	s.expires = time.Duration(secs) * time.Second
	if signed == "" {
		return errMalformedQuery("X-Amz-SignedHeaders must not be empty")
	}
	s.signedHeaders = signed
	s.sig, s.sigOK = decodeSignature(sigHex)
	return nil
}

// parseCredential parses "<access key>/<yyyymmdd>/<region>/s3/aws4_request"
// into s, returning a description of what is wrong, or "". The access key
// is everything before the last four components, so keys containing '/'
// survive.
func (s *signature) parseCredential(cred string) string {
	const malformed = `the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`
	var parts [4]string
	rest := cred
	for i := 3; i >= 0; i-- {
		j := strings.LastIndexByte(rest, '/')
		if j < 0 {
			return malformed
		}
		parts[i], rest = rest[j+1:], rest[:j]
	}
	date, region, service, term := parts[0], parts[1], parts[2], parts[3]
	if rest == "" || region == "" {
		return malformed
	}
	if _, err := time.Parse(yyyymmdd, date); err != nil || len(date) != 8 {
		return "incorrect date format " + strconv.Quote(date) + `. This date in the credential must be in the format "yyyyMMdd".`
	}
	if service != "s3" {
		return "incorrect service " + strconv.Quote(service) + `. This endpoint belongs to "s3".`
	}
	if term != "aws4_request" {
		return "incorrect terminal " + strconv.Quote(term) + `. This endpoint uses "aws4_request".`
	}
	s.accessKey, s.date, s.region = rest, date, region
	s.scope = cred[len(rest)+1:]
	return ""
}

// decodeSignature decodes a signature as S3 writes it: 64 lower-case hex
// digits.
func decodeSignature[T string | []byte](s T) ([32]byte, bool) {
	return decodeHex32(s, false)
}

// decodeHex32 decodes 64 hex digits, upper-case ones only if upper is set.
func decodeHex32[T string | []byte](s T, upper bool) (out [32]byte, ok bool) {
	if len(s) != 2*len(out) {
		return out, false
	}
	for i := range out {
		hi, ok1 := fromHex(s[2*i], upper)
		lo, ok2 := fromHex(s[2*i+1], upper)
		if !ok1 || !ok2 {
			return out, false
		}
		out[i] = hi<<4 | lo
	}
	return out, true
}

func fromHex(c byte, upper bool) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case upper && 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// checkSignedHeaders rejects requests whose signature does not cover the
// host and every x-amz-* header present, as S3 does. Otherwise whoever
// holds a signed request — a presigned PUT URL, say — could add
// x-amz-copy-source or x-amz-acl and have the signature vouch for them.
func checkSignedHeaders(r *http.Request, signed string) error {
	if !listed(signed, "host") {
		return s3err.ErrHeadersNotSigned.WithMessage("There were headers present in the request which were not signed: host")
	}
	for name := range r.Header {
		if len(name) > len("x-amz-") && strings.EqualFold(name[:len("x-amz-")], "x-amz-") && !listed(signed, name) {
			return s3err.ErrHeadersNotSigned.WithMessage("There were headers present in the request which were not signed: " + strings.ToLower(name))
		}
	}
	return nil
}

// listed reports whether the ';'-separated list contains name, ignoring case.
func listed(list, name string) bool {
	for list != "" {
		var item string
		item, list, _ = strings.Cut(list, ";")
		if strings.EqualFold(item, name) {
			return true
		}
	}
	return false
}

// requestSignature computes the signature the client should have sent.
// spacesOnly selects how header values are folded (see appendTrimmed).
func (v *Verifier) requestSignature(r *http.Request, q params, s *signature, payload string, key *[32]byte, spacesOnly bool) [32]byte {
	bp := v.getBuf()
	defer v.putBuf(bp)

	buf := appendCanonicalRequest((*bp)[:0], r, q, s.signedHeaders, payload, s.presigned, spacesOnly)
	crHash := sha256.Sum256(buf)

	buf = append(buf[:hmacScratch], algorithmV4+"\n"...)
	buf = append(buf, s.amzDate...)
	buf = append(buf, '\n')
	buf = append(buf, s.scope...)
	buf = append(buf, '\n')
	buf = hex.AppendEncode(buf, crHash[:])
	*bp = buf
	return hmacSHA256(key, buf)
}

// hmacScratch is the room hmacSHA256 needs in front of its message.
const hmacScratch = sha256.BlockSize

// hmacSHA256 returns HMAC-SHA256(key, buf[hmacScratch:]), overwriting
// buf[:hmacScratch]. Unlike crypto/hmac it allocates nothing, which matters
// on a path every request takes.
func hmacSHA256(key *[32]byte, buf []byte) [32]byte {
	pad := buf[:hmacScratch]
	for i := range pad {
		pad[i] = 0x36
	}
	for i, k := range key {
		pad[i] ^= k
	}
	inner := sha256.Sum256(buf)
	var outer [sha256.BlockSize + sha256.Size]byte
	for i := range sha256.BlockSize {
		outer[i] = 0x5c
	}
	for i, k := range key {
		outer[i] ^= k
	}
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:])
}

// putBuf returns a scratch buffer to the pool unless a huge request made
// it too big to keep around.
func (v *Verifier) putBuf(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		v.bufs.Put(bp)
	}
}

func (v *Verifier) getBuf() *[]byte {
	if bp, ok := v.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 1024)
	return &b
}

// appendCanonicalRequest appends the SigV4 canonical request:
//
//	METHOD \n URI \n QUERY \n name:value \n ... \n \n SIGNED-HEADERS \n PAYLOAD
func appendCanonicalRequest(dst []byte, r *http.Request, q params, signedHeaders, payload string, presigned, spacesOnly bool) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, '\n')
	dst = appendCanonicalURI(dst, r.URL.Path)
	dst = append(dst, '\n')
	dst = appendCanonicalQuery(dst, q, presigned)
	dst = append(dst, '\n')
	for rest := signedHeaders; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		dst = append(dst, name...)
		dst = append(dst, ':')
		dst = appendHeaderValue(dst, r, name, spacesOnly)
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	dst = append(dst, signedHeaders...)
	dst = append(dst, '\n')
	dst = append(dst, payload...)
	return dst
}

// appendCanonicalURI appends the decoded path re-encoded the way S3
// signers encode it: once (S3 does not double-encode), every byte but the
// unreserved characters and '/' as %XX, no dot-segment or slash cleaning.
func appendCanonicalURI(dst []byte, path string) []byte {
	if path == "" {
		return append(dst, '/')
	}
	return appendURIEncoded(dst, path, true)
}

const upperHex = "0123456789ABCDEF"

func appendURIEncoded(dst []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || c == '/' && keepSlash {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// appendHeaderValue appends the canonical value of the header called name:
// the values joined by ',', each trimmed, runs of white space collapsed.
func appendHeaderValue(dst []byte, r *http.Request, name string, spacesOnly bool) []byte {
	var vals []string
	switch {
	case strings.EqualFold(name, "host"):
		// net/http moves Host (and HTTP/2's :authority) out of the header map.
		return appendTrimmed(dst, r.Host, spacesOnly)
	case strings.EqualFold(name, "transfer-encoding"):
		// and Transfer-Encoding too.
		vals = r.TransferEncoding
	default:
		vals = headerValues(r.Header, name)
		if vals == nil && strings.EqualFold(name, "content-length") && r.ContentLength > 0 {
			return strconv.AppendInt(dst, r.ContentLength, 10)
		}
	}
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendTrimmed(dst, v, spacesOnly)
	}
	return dst
}

// headerValues looks name up in h without allocating a canonical key.
func headerValues(h http.Header, name string) []string {
	var buf [64]byte
	if len(name) > len(buf) {
		return h.Values(name)
	}
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[i] = c
		upper = c == '-'
	}
	return h[string(buf[:len(name)])]
}

// appendTrimmed appends v without leading and trailing white space and
// with inner runs of it collapsed to one space.
//
// Signers disagree on what white space is. The AWS SDKs for Python and
// JavaScript and minio-go fold tabs too; aws-sdk-go-v2 folds only spaces.
// spacesOnly selects the latter; see oddSpace.
func appendTrimmed(dst []byte, v string, spacesOnly bool) []byte {
	space := false
	start := len(dst)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' || !spacesOnly && oddSpaceByte(c) {
			space = true
			continue
		}
		if space && len(dst) > start {
			dst = append(dst, ' ')
		}
		space = false
		dst = append(dst, c)
	}
	return dst
}

func oddSpaceByte(c byte) bool { return c == '\t' || c == '\v' || c == '\f' }

// oddSpace reports whether a signed header value contains white space
// other than spaces, where the signers' folding rules differ.
func oddSpace(r *http.Request, signedHeaders string) bool {
	for rest := signedHeaders; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		for _, v := range headerValues(r.Header, name) {
			if strings.ContainsAny(v, "\t\v\f") {
				return true
			}
		}
	}
	return false
}

// keyCache holds derived signing keys, which change only daily per secret
// and region, so that a request costs one HMAC instead of five.
type keyCache struct {
	mu   sync.Mutex
	keys map[keyID]*[32]byte
}

type keyID struct{ secret, date, region string }

// maxCachedKeys bounds the cache; each entry is about 100 bytes plus the
// strings.
const maxCachedKeys = 1024

func (c *keyCache) get(secret, date, region string) *[32]byte {
	id := keyID{secret, date, region}
	c.mu.Lock()
	k, ok := c.keys[id]
	c.mu.Unlock()
	if ok {
		return k
	}
	k = deriveSigningKey(secret, date, region)
	// The strings may point into a large header; keep copies.
	id = keyID{strings.Clone(secret), strings.Clone(date), strings.Clone(region)}
	c.mu.Lock()
	if c.keys == nil {
		c.keys = make(map[keyID]*[32]byte)
	}
	if len(c.keys) >= maxCachedKeys {
		for old := range c.keys { // evict an arbitrary entry
			delete(c.keys, old)
			break
		}
	}
	c.keys[id] = k
	c.mu.Unlock()
	return k
}

func deriveSigningKey(secret, date, region string) *[32]byte {
	k := hmacString([]byte("AWS4"+secret), date)
	k = hmacString(k[:], region)
	k = hmacString(k[:], "s3")
	k = hmacString(k[:], "aws4_request")
	return &k
}

func hmacString(key []byte, msg string) [32]byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	var out [32]byte
	mac.Sum(out[:0])
	return out
}
