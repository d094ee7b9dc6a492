// Package s3err defines the errors the S3 gateway reports to clients and
// writes them in the XML form that S3 clients parse.
//
// The package-level Err* values are sentinels: compare against them with
// errors.Is, and never modify them. WithMessage and WithCause return
// customised copies that still match their sentinel under errors.Is, because
// Is compares S3 error codes rather than pointers.
package s3err

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// Error is an S3 error: the code a client dispatches on, a human-readable
// message, and the HTTP status it is sent with.
type Error struct {
	Code       string
	Message    string
	HTTPStatus int

	// cause is the underlying failure, kept for logs; clients never see it.
	cause error
}

// Error returns "Code: Message", followed by the cause if there is one.
func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Is reports whether target is an *Error with the same S3 code. Comparing
// codes lets a copy made by WithMessage or WithCause match its sentinel.
// It also means every AccessDenied variant (for example
// ErrExpiredPresignedRequest) matches ErrAccessDenied, which is what the
// client sees too.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Unwrap returns the cause given to WithCause, if any.
func (e *Error) Unwrap() error { return e.cause }

// WithMessage returns a copy of e with its message replaced.
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.Message = msg
	return &c
}

// WithCause returns a copy of e that records err as its cause, so that logs
// and errors.Is/As can reach it. The cause is never sent to the client.
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.cause = err
	return &c
}

// From returns the *Error in err's chain, ErrInternalError wrapping err if
// there is none, or nil if err is nil.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return ErrInternalError.WithCause(err)
}

// Write sends e as the response to r: its HTTP status, an
// x-amz-request-id header and the S3 error XML document
//
//	<Error><Code/><Message/><Resource/><RequestId/></Error>
//
// HEAD requests and 304 responses carry no body, as in S3. resource is
// normally the request path ("/bucket/key"). A nil e is sent as
// ErrInternalError.
func Write(w http.ResponseWriter, r *http.Request, e *Error, resource, requestID string) {
	if e == nil {
		e = ErrInternalError
	}
	status := e.HTTPStatus
	if status == 0 {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	if requestID != "" {
		h.Set("X-Amz-Request-Id", requestID)
	}
	if status == http.StatusNotModified || (r != nil && r.Method == http.MethodHead) {
		w.WriteHeader(status)
		return
	}
	body := appendXML(make([]byte, 0, 256), e, resource, requestID)
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body) // the status is out; a failed write has nobody to report to
}

// appendXML appends the S3 error document for e to dst.
func appendXML(dst []byte, e *Error, resource, requestID string) []byte {
	dst = append(dst, xml.Header...)
	dst = append(dst, "<Error><Code>"...)
	dst = appendEscaped(dst, e.Code)
	dst = append(dst, "</Code><Message>"...)
	dst = appendEscaped(dst, e.Message)
	dst = append(dst, "</Message><Resource>"...)
	dst = appendEscaped(dst, resource)
	dst = append(dst, "</Resource><RequestId>"...)
	dst = appendEscaped(dst, requestID)
	dst = append(dst, "</RequestId></Error>"...)
	return dst
}

// appendEscaped appends s with XML's special characters escaped. Bytes that
// XML 1.0 cannot carry at all (control characters, invalid UTF-8) become
// U+FFFD, as encoding/xml does, so a hostile object key cannot make the
// document unparsable.
func appendEscaped(dst []byte, s string) []byte {
	for _, r := range s {
		switch r {
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '&':
			dst = append(dst, "&amp;"...)
		case '\'':
			dst = append(dst, "&apos;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		case '\t':
			dst = append(dst, "&#x9;"...)
		case '\n':
			dst = append(dst, "&#xA;"...)
		case '\r':
			dst = append(dst, "&#xD;"...)
		default:
			if !xmlChar(r) {
				r = '\uFFFD'
			}
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}

// xmlChar reports whether r may appear in an XML 1.0 document.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
