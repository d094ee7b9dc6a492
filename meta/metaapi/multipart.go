package metaapi

import (
	"errors"
	"net/http"
	"time"
)

// Multipart and copy errors.
var (
	ErrNoSuchUpload     = errors.New("no such multipart upload")
	ErrInvalidPart      = errors.New("invalid part")
	ErrInvalidPartOrder = errors.New("parts are not in ascending order")
	ErrEntityTooSmall   = errors.New("part is smaller than the minimum allowed size")
	ErrNoSuchUser       = errors.New("no such user")
	ErrUserExists       = errors.New("user already exists")
)

func init() {
	codes = append(codes, []struct {
		code   string
		err    error
		status int
	}{
		{"NoSuchUpload", ErrNoSuchUpload, http.StatusNotFound},
		{"InvalidPart", ErrInvalidPart, http.StatusBadRequest},
		{"InvalidPartOrder", ErrInvalidPartOrder, http.StatusBadRequest},
		{"EntityTooSmall", ErrEntityTooSmall, http.StatusBadRequest},
		{"NoSuchUser", ErrNoSuchUser, http.StatusNotFound},
		{"UserExists", ErrUserExists, http.StatusConflict},
	}...)
}

// MetaPartSizes is the Object.Meta key under which the metadata service
// records a multipart object's part sizes (comma-separated, in order), so
// readers can serve a single part (S3's partNumber) and report the count.
const MetaPartSizes = "x-talus-part-sizes"

// MinPartSize is the smallest a multipart part may be unless it is the last.
const MinPartSize = 5 << 20

// MaxPartNumber is the highest part number S3 allows.
const MaxPartNumber = 10000

// Upload is a multipart upload in progress.
type Upload struct {
	Bucket      string            `json:"bucket"`
	Key         string            `json:"key"`
	ID          string            `json:"id"`
	Initiated   time.Time         `json:"initiated"`
	ContentType string            `json:"ctype,omitempty"`
	Meta        map[string]string `json:"meta,omitempty"`
	Owner       string            `json:"owner,omitempty"`
}

// Part is one uploaded part. Parts are always stored as segments, never
// inline, so that completing an upload only stitches segment lists.
type Part struct {
	Number   int       `json:"number"`
	ETag     string    `json:"etag"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"mtime"`
	Segments []Segment `json:"segs,omitempty"`
	// Meta carries per-part attributes such as its x-amz-checksum-* value.
	Meta map[string]string `json:"meta,omitempty"`
}

// PartCommitRequest records an uploaded part, replacing any earlier upload of
// the same part number.
type PartCommitRequest struct {
	Bucket   string `json:"bucket"`
	Key      string `json:"key"`
	UploadID string `json:"uploadId"`
	Part     Part   `json:"part"`
}

// CompletePart names a part in a CompleteMultipartUpload request.
type CompletePart struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
}

// CompleteRequest assembles an upload's parts into its object.
type CompleteRequest struct {
	Bucket   string         `json:"bucket"`
	Key      string         `json:"key"`
	UploadID string         `json:"uploadId"`
	Parts    []CompletePart `json:"parts"`
	Cond     Preconditions  `json:"cond"`
}

// PartList is one page of an upload's parts.
type PartList struct {
	Upload    Upload `json:"upload"`
	Parts     []Part `json:"parts"` // without segments
	Truncated bool   `json:"truncated"`
	Next      int    `json:"next,omitempty"`
}

// UploadListRequest selects uploads in progress, in (key, upload id) order.
type UploadListRequest struct {
	Bucket         string `json:"bucket"`
	Prefix         string `json:"prefix,omitempty"`
	Delimiter      string `json:"delimiter,omitempty"`
	KeyMarker      string `json:"keyMarker,omitempty"`
	UploadIDMarker string `json:"uploadIdMarker,omitempty"`
	Max            int    `json:"max,omitempty"`
}

// UploadList is one page of uploads in progress.
type UploadList struct {
	Uploads            []Upload `json:"uploads"`
	CommonPrefixes     []string `json:"prefixes,omitempty"`
	Truncated          bool     `json:"truncated"`
	NextKeyMarker      string   `json:"nextKeyMarker,omitempty"`
	NextUploadIDMarker string   `json:"nextUploadIdMarker,omitempty"`
}

// CopyRequest makes Dst a new object with Src's content, sharing its
// segments: no data moves.
type CopyRequest struct {
	SrcBucket string `json:"srcBucket"`
	SrcKey    string `json:"srcKey"`
	// SrcCond guards the source (x-amz-copy-source-if-match / -none-match);
	// date conditions are checked by the caller on a Head.
	SrcCond   Preconditions `json:"srcCond"`
	DstBucket string        `json:"dstBucket"`
	DstKey    string        `json:"dstKey"`
	DstCond   Preconditions `json:"dstCond"`
	// ReplaceMeta selects S3's REPLACE directive: the copy gets ContentType
	// and Meta from this request instead of from the source.
	ReplaceMeta bool              `json:"replaceMeta,omitempty"`
	ContentType string            `json:"ctype,omitempty"`
	Meta        map[string]string `json:"meta,omitempty"`
}

// User is an access key of the S3 gateway. Buckets lists the buckets the key
// may use besides those it owns; Root keys may use everything.
type User struct {
	AccessKey string    `json:"accessKey"`
	SecretKey string    `json:"secretKey,omitempty"`
	Buckets   []string  `json:"buckets,omitempty"`
	Root      bool      `json:"root,omitempty"`
	Created   time.Time `json:"created"`
}
