package s3err

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type errorDoc struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Resource  string
	RequestID string `xml:"RequestId"`
}

func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/bucket/key", nil)
	Write(w, r, ErrNoSuchKey, "/bucket/key", "4442587FB7D0A2F9")

	res := w.Result()
	if res.StatusCode != 404 {
		t.Errorf("status = %d, want 404", res.StatusCode)
	}
	if got := res.Header.Get("Content-Type"); got != "application/xml" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := res.Header.Get("x-amz-request-id"); got != "4442587FB7D0A2F9" {
		t.Errorf("x-amz-request-id = %q", got)
	}
	body, _ := io.ReadAll(res.Body)
	if got := res.Header.Get("Content-Length"); got != fmt.Sprint(len(body)) {
		t.Errorf("Content-Length = %q, body is %d bytes", got, len(body))
	}
	const want = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>` +
		`<Resource>/bucket/key</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>`
	if string(body) != want {
		t.Errorf("body:\n%s\nwant:\n%s", body, want)
	}
}

func TestWriteEscapes(t *testing.T) {
	// Keys are user data: nothing in them may break the document.
	resource := "/b/<a>&\"'\x00\x01\xff]]>\r\n\tü"
	msg := "bad <key> & more"
	w := httptest.NewRecorder()
	Write(w, httptest.NewRequest("PUT", "/", nil), ErrInvalidArgument.WithMessage(msg), resource, "id")
	var doc errorDoc
	if err := xml.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("unparsable error document %q: %v", w.Body.String(), err)
	}
	if doc.Code != "InvalidArgument" || doc.Message != msg || doc.RequestID != "id" {
		t.Errorf("parsed %+v", doc)
	}
	wantResource := "/b/<a>&\"'\uFFFD\uFFFD\uFFFD]]>\r\n\tü"
	if doc.Resource != wantResource {
		t.Errorf("Resource = %q, want %q", doc.Resource, wantResource)
	}
}

func TestWriteWithoutBody(t *testing.T) {
	for _, tc := range []struct {
		method string
		err    *Error
		status int
	}{
		{"HEAD", ErrNoSuchKey, 404},
		{"HEAD", ErrAccessDenied, 403},
		{"GET", ErrNotModified, 304},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			Write(w, r, tc.err, r.URL.Path, "rid")
		}))
		req, _ := http.NewRequest(tc.method, srv.URL+"/b/k", nil)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		srv.Close()
		if res.StatusCode != tc.status || len(body) != 0 || res.Header.Get("X-Amz-Request-Id") != "rid" {
			t.Errorf("%s %s: status %d, %d body bytes, request id %q", tc.method, tc.err.Code, res.StatusCode, len(body), res.Header.Get("X-Amz-Request-Id"))
		}
	}
}

func TestWriteNil(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, httptest.NewRequest("GET", "/", nil), nil, "/", "")
	if w.Code != 500 || !strings.Contains(w.Body.String(), "<Code>InternalError</Code>") {
		t.Errorf("got %d %s", w.Code, w.Body)
	}
	if _, ok := w.Result().Header["X-Amz-Request-Id"]; ok {
		t.Error("empty request id was sent")
	}
}

func TestErrorsIsAs(t *testing.T) {
	cause := errors.New("disk on fire")
	custom := ErrSignatureDoesNotMatch.WithMessage("chunk 3").WithCause(cause)
	wrapped := fmt.Errorf("put object: %w", custom)

	var e *Error
	if !errors.As(wrapped, &e) || e.Code != "SignatureDoesNotMatch" || e.Message != "chunk 3" || e.HTTPStatus != 403 {
		t.Fatalf("errors.As gave %+v", e)
	}
	if !errors.Is(wrapped, ErrSignatureDoesNotMatch) {
		t.Error("customised copy does not match its sentinel")
	}
	if errors.Is(wrapped, ErrAccessDenied) {
		t.Error("SignatureDoesNotMatch matches AccessDenied")
	}
	if !errors.Is(wrapped, cause) {
		t.Error("cause not reachable")
	}
	if ErrSignatureDoesNotMatch.Message == "chunk 3" {
		t.Error("WithMessage modified the sentinel")
	}
	if !errors.Is(ErrExpiredPresignedRequest, ErrAccessDenied) {
		t.Error("expired presigned URL is not an AccessDenied")
	}
	if got := custom.Error(); got != "SignatureDoesNotMatch: chunk 3: disk on fire" {
		t.Errorf("Error() = %q", got)
	}
}

func TestFrom(t *testing.T) {
	if From(nil) != nil {
		t.Error("From(nil) != nil")
	}
	if got := From(fmt.Errorf("x: %w", ErrNoSuchBucket)); got != ErrNoSuchBucket {
		t.Errorf("From kept %v", got)
	}
	plain := errors.New("boom")
	got := From(plain)
	if got.Code != "InternalError" || got.HTTPStatus != 500 || !errors.Is(got, plain) {
		t.Errorf("From(plain) = %v", got)
	}
}

func TestCodesWellFormed(t *testing.T) {
	all := []*Error{
		ErrAccessDenied, ErrAuthorizationHeaderMalformed, ErrAuthorizationQueryParametersError,
		ErrExpiredToken, ErrInvalidAccessKeyID, ErrMissingSecurityHeader, ErrRequestTimeTooSkewed,
		ErrSignatureDoesNotMatch, ErrExpiredPresignedRequest, ErrInvalidArgument, ErrInvalidRequest,
		ErrInvalidRange, ErrPreconditionFailed, ErrNotModified, ErrMalformedXML, ErrInvalidPart,
		ErrInvalidPartOrder, ErrEntityTooSmall, ErrEntityTooLarge, ErrNoSuchUpload, ErrNoSuchBucket,
		ErrNoSuchKey, ErrBucketNotEmpty, ErrBucketAlreadyExists, ErrBucketAlreadyOwnedByYou,
		ErrInvalidBucketName, ErrKeyTooLong, ErrBadDigest, ErrInvalidDigest, ErrXAmzContentSHA256Mismatch,
		ErrIncompleteBody, ErrMissingContentLength, ErrMethodNotAllowed, ErrNotImplemented,
		ErrInternalError, ErrSlowDown, ErrServiceUnavailable, ErrMetadataTooLarge, ErrInvalidObjectState,
		ErrRequestHeaderSectionTooLarge, ErrMalformedTrailer,
	}
	want := map[string]int{
		"AccessDenied": 403, "InvalidAccessKeyId": 403, "SignatureDoesNotMatch": 403, "RequestTimeTooSkewed": 403,
		"AuthorizationHeaderMalformed": 400, "AuthorizationQueryParametersError": 400, "InvalidRange": 416,
		"PreconditionFailed": 412, "NotModified": 304, "NoSuchKey": 404, "NoSuchBucket": 404, "NoSuchUpload": 404,
		"BucketNotEmpty": 409, "BucketAlreadyExists": 409, "BucketAlreadyOwnedByYou": 409, "MissingContentLength": 411,
		"MethodNotAllowed": 405, "NotImplemented": 501, "InternalError": 500, "SlowDown": 503, "ServiceUnavailable": 503,
		"InvalidObjectState": 403, "KeyTooLongError": 400, "XAmzContentSHA256Mismatch": 400,
	}
	for _, e := range all {
		if e.Code == "" || e.Message == "" || e.HTTPStatus < 300 {
			t.Errorf("incomplete %+v", e)
		}
		if st, ok := want[e.Code]; ok && st != e.HTTPStatus {
			t.Errorf("%s: status %d, want %d", e.Code, e.HTTPStatus, st)
		}
	}
}
