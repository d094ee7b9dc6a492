package metaapi

import (
	"errors"
	"net/http"
)

// Errors the metadata service answers with. They travel as a code in the
// error body and come back out of Client methods as these values, so callers
// test them with errors.Is on either side of the wire.
var (
	ErrNoSuchBucket     = errors.New("no such bucket")
	ErrNoSuchKey        = errors.New("no such key")
	ErrBucketExists     = errors.New("bucket already exists")
	ErrBucketNotEmpty   = errors.New("bucket is not empty")
	ErrInvalidName      = errors.New("invalid name")
	ErrPrecondition     = errors.New("precondition failed")
	ErrConflict         = errors.New("conflicting concurrent change")
	ErrInvalidArgument  = errors.New("invalid argument")
	ErrNotEnoughServers = errors.New("not enough chunk servers")
	ErrUnavailable      = errors.New("metadata service unavailable")
	// ErrNoQuorum means no metadata leader could be reached: too few
	// metadata nodes are up to elect one, or an election is under way.
	ErrNoQuorum = errors.New("metadata service has no quorum (no leader)")
)

var codes = []struct {
	code   string
	err    error
	status int
}{
	{"NoSuchBucket", ErrNoSuchBucket, http.StatusNotFound},
	{"NoSuchKey", ErrNoSuchKey, http.StatusNotFound},
	{"BucketExists", ErrBucketExists, http.StatusConflict},
	{"BucketNotEmpty", ErrBucketNotEmpty, http.StatusConflict},
	{"InvalidName", ErrInvalidName, http.StatusBadRequest},
	{"PreconditionFailed", ErrPrecondition, http.StatusPreconditionFailed},
	{"Conflict", ErrConflict, http.StatusConflict},
	{"InvalidArgument", ErrInvalidArgument, http.StatusBadRequest},
	{"NotEnoughServers", ErrNotEnoughServers, http.StatusServiceUnavailable},
	{"Unavailable", ErrUnavailable, http.StatusServiceUnavailable},
	{"NoQuorum", ErrNoQuorum, http.StatusServiceUnavailable},
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// CodeOf maps an error to its wire code and HTTP status; errors that are none
// of the sentinels are internal.
func CodeOf(err error) (code string, status int) {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code, c.status
		}
	}
	return "Internal", http.StatusInternalServerError
}

// errorFor turns a wire code back into its sentinel, or nil if unknown.
func errorFor(code string) error {
	for _, c := range codes {
		if c.code == code {
			return c.err
		}
	}
	return nil
}
