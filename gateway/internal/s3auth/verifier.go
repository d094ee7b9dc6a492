// Package s3auth authenticates S3 requests signed with AWS Signature
// Version 4 — in an Authorization header or in a presigned URL's query —
// and verifies the request bodies those signatures cover: bodies whose
// SHA-256 is declared in x-amz-content-sha256, and aws-chunked bodies
// (STREAMING-*) with per-chunk signatures and trailing checksums. It also
// accepts the legacy Signature Version 2, header and presigned, which older
// tools (s3cmd, aws CLI v1's presign) still use.
//
// Body verification happens while the body is read: the replacement body in
// Result returns an *s3err.Error instead of io.EOF if anything does not
// match. Data read before that point is unverified, so callers must read
// the body until it returns io.EOF, and commit nothing before. (Reading
// exactly the expected length is not enough: io.ReadFull and io.CopyN drop
// an error that arrives with the last bytes. Errors are sticky, so one more
// Read returns it.)
package s3auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/talusfs/talus/gateway/internal/s3checksum"
	"github.com/talusfs/talus/gateway/internal/s3err"
)

// ErrUnknownKey is the error a CredentialStore returns (possibly wrapped)
// for an access key it does not know.
var ErrUnknownKey = errors.New("s3auth: unknown access key")

// CredentialStore looks up the secret for an access key. It returns an
// error satisfying errors.Is(err, ErrUnknownKey) if the key does not exist;
// any other error is reported to the client as InternalError. Verify calls
// it once per signed request, so it should answer from memory.
type CredentialStore interface {
	Secret(ctx context.Context, accessKey string) (secret string, err error)
}

// DefaultMaxSkew is the clock skew S3 tolerates between client and server.
const DefaultMaxSkew = 15 * time.Minute

// Verifier authenticates requests against a CredentialStore. Its exported
// fields must be set before first use; after that it is safe for concurrent
// use and must not be copied.
//
// Any region in the credential scope is accepted, as long as the request is
// signed for it; the service must be "s3".
type Verifier struct {
	// Creds supplies the secret keys.
	Creds CredentialStore
	// MaxSkew is how far a request's date may be from Now; zero means
	// DefaultMaxSkew.
	MaxSkew time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Domain is the gateway's domain for virtual-host-style requests
	// (<bucket>.<Domain>), which Signature Version 2 needs to know: it
	// signs the bucket as part of the path. Empty: path style only.
	Domain string

	keys    keyCache
	bufs    sync.Pool // *[]byte scratch for canonical requests
	readers sync.Pool // *bufio.Reader for aws-chunked bodies
}

// Result describes an authenticated request.
type Result struct {
	// AccessKey is the key the request was signed with; "" if Anonymous.
	AccessKey string
	// Anonymous reports that the request carried no authentication at all.
	// The caller decides whether to serve it.
	Anonymous bool
	// Presigned reports that the signature came from the query string.
	Presigned bool
	// Region is the region of the credential scope the client signed for.
	Region string

	// Body, when not nil, replaces r.Body: it decodes aws-chunked framing
	// and verifies what the signature covers (payload hash, chunk
	// signatures, trailing checksum) as it is read, returning an
	// *s3err.Error instead of io.EOF if anything does not match; read it
	// until io.EOF before committing. Errors reading r.Body itself pass
	// through, except that a body cut short in aws-chunked framing is
	// IncompleteBody. Body is nil when r.Body can be used as it is.
	// Closing it closes r.Body.
	Body io.ReadCloser
	// DecodedLength is the number of bytes the body yields:
	// x-amz-decoded-content-length for aws-chunked bodies, r.ContentLength
	// otherwise, -1 when unknown.
	DecodedLength int64
	// TrailerChecksum is the algorithm of the checksum an aws-chunked body
	// carries after its data (declared in x-amz-trailer), or
	// s3checksum.None. Body verifies it; TrailerChecksumValue returns it.
	TrailerChecksum s3checksum.Algorithm

	chunked *chunkedReader
}

// TrailerChecksumValue returns the base64 trailing checksum the client
// sent, once Body has returned io.EOF (and so verified it); "" before that
// or if there is none.
func (res *Result) TrailerChecksumValue() string {
	if res.chunked == nil {
		return ""
	}
	return res.chunked.trailerValue
}

// Verify authenticates r, a request received by an http.Server. On success
// the returned Result names the access key and, for bodies that need
// decoding or verification, carries the body to read instead of r.Body.
// Requests without any authentication succeed with Result.Anonymous set.
// Every error Verify returns is an *s3err.Error. It does not read the body.
//
// Signature Version 2 is accepted too (see sigv2.go), as S3 still accepts
// it in the regions that had it. SigV4a (AWS4-ECDSA-P256-SHA256) is
// refused with InvalidRequest "The authorization mechanism you have
// provided is not supported. Please use AWS4-HMAC-SHA256.", which is how S3
// answers unsupported mechanisms, and which clients recognise.
//
// Verify must see the request as the client sent it: call it before
// anything rewrites r.URL or r.Host.
func (v *Verifier) Verify(r *http.Request) (*Result, error) {
	var arr [16]param
	q, err := parseQuery(r.URL.RawQuery, arr[:0])
	if err != nil {
		return nil, err
	}
	authz, hasAuthz := r.Header["Authorization"]
	presigned := q.has("X-Amz-Algorithm") || q.has("X-Amz-Credential") || q.has("X-Amz-Signature")
	presignedV2 := q.has("AWSAccessKeyId")

	sig := &signature{}
	switch {
	case hasAuthz && (presigned || presignedV2):
		return nil, errTwoMechanisms
	case hasAuthz:
		if len(authz) != 1 {
			return nil, errMalformedHeader("more than one Authorization header.")
		}
		if strings.HasPrefix(authz[0], algorithmV2+" ") {
			return v.verifyV2(r, q, authz[0])
		}
		err = parseAuthorization(sig, authz[0], r.Header)
	case presigned:
		err = parsePresigned(sig, q)
	case presignedV2:
		return v.verifyV2(r, q, "")
	default:
		return v.anonymous(r)
	}
	if err != nil {
		return nil, err
	}
	if err := v.checkTime(sig); err != nil {
		return nil, err
	}
	if err := checkSignedHeaders(r, sig.signedHeaders); err != nil {
		return nil, err
	}
	payload, err := payloadHash(r, sig.presigned, q)
	if err != nil {
		return nil, err
	}

	secret, err := v.lookup(r.Context(), sig.accessKey)
	if err != nil {
		return nil, err
	}
	key := v.keys.get(secret, sig.date, sig.region)
	want := v.requestSignature(r, q, sig, payload, key, false)
	if !sig.matches(want) {
		if !oddSpace(r, sig.signedHeaders) {
			return nil, s3err.ErrSignatureDoesNotMatch
		}
		if want = v.requestSignature(r, q, sig, payload, key, true); !sig.matches(want) {
			return nil, s3err.ErrSignatureDoesNotMatch
		}
	}

	res := &Result{
		AccessKey: sig.accessKey,
		Presigned: sig.presigned,
		Region:    sig.region,
	}
	if err := v.attachBody(r, res, payload, &signer{sig.amzDate, sig.scope, key, want}); err != nil {
		return nil, err
	}
	return res, nil
}

// anonymous handles a request without authentication. Its body still gets
// decoded, so that if the caller serves it (a public-write bucket) it
// stores the data and not the aws-chunked framing around it.
func (v *Verifier) anonymous(r *http.Request) (*Result, error) {
	res := &Result{Anonymous: true}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = unsignedPayload
	} else if err := checkPayloadHash(payload); err != nil {
		return nil, err
	}
	if err := v.attachBody(r, res, payload, nil); err != nil {
		return nil, err
	}
	return res, nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return DefaultMaxSkew
}

// checkTime enforces the clock skew window for header signatures and the
// validity window for presigned URLs.
func (v *Verifier) checkTime(sig *signature) error {
	now := v.now()
	skew := v.maxSkew()
	if sig.presigned {
		if now.Before(sig.time.Add(-skew)) {
			return s3err.ErrRequestNotYetValid
		}
		if now.After(sig.time.Add(sig.expires)) {
			return s3err.ErrExpiredPresignedRequest
		}
		return nil
	}
	if d := now.Sub(sig.time); d > skew || d < -skew {
		return s3err.ErrRequestTimeTooSkewed
	}
	return nil
}

func (v *Verifier) lookup(ctx context.Context, accessKey string) (string, error) {
	if v.Creds == nil {
		return "", s3err.ErrInternalError.WithCause(errors.New("s3auth: Verifier has no CredentialStore"))
	}
	secret, err := v.Creds.Secret(ctx, accessKey)
	switch {
	case errors.Is(err, ErrUnknownKey):
		return "", s3err.ErrInvalidAccessKeyID
	case err != nil:
		return "", s3err.ErrInternalError.WithCause(fmt.Errorf("look up access key %q: %w", accessKey, err))
	}
	return secret, nil
}

var (
	errTwoMechanisms        = s3err.ErrInvalidArgument.WithMessage("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
	errUnsupportedMechanism = s3err.ErrInvalidRequest.WithMessage("The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
	errUnsupportedAuthType  = s3err.ErrInvalidArgument.WithMessage("Unsupported Authorization Type")
)
