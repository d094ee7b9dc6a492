package gateway

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/talusfs/talus/gateway/internal/s3err"
)

// operation is an S3 operation a route leads to. The gateway matches routes
// with mux but calls operations itself, with the request already resolved
// and authenticated.
type operation struct {
	name string
	fn   func(*request) error
}

// ServeHTTP exists to make operation an http.Handler for mux; the gateway
// never serves through it.
func (op *operation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s3err.Write(w, r, s3err.ErrInternalError, r.URL.Path, "")
}

// Subresources the gateway does not implement. A request naming one must
// not fall through to the plain operation on the same path: a PUT
// ?lifecycle would otherwise overwrite the object with its XML body.
var (
	objectUnsupported = []string{"acl", "attributes", "legal-hold", "retention", "tagging", "torrent", "restore", "select", "uploads", "renameObject"}
	bucketUnsupported = []string{"accelerate", "acl", "analytics", "cors", "encryption", "intelligent-tiering", "inventory", "lifecycle", "logging", "metadataTable", "metrics", "notification", "object-lock", "ownershipControls", "policy", "policyStatus", "publicAccessBlock", "replication", "requestPayment", "tagging", "versioning", "versions", "website", "session", "uploadId", "partNumber", "location", "uploads", "delete"}
)

// routes builds one router per kind of target: the service (no bucket),
// buckets and objects. Order matters: the first route that matches wins.
func (g *Gateway) routes() {
	// Operations talus lacks are the owner's to be told about: others are
	// refused as they would be if the operation existed.
	notImpl := func(q *request) error {
		switch {
		case q.bucket != "":
			if err := g.authorize(q, q.bucket, permOwner); err != nil {
				return err
			}
		case q.user.anonymous:
			return s3err.ErrAccessDenied
		}
		return s3err.ErrNotImplemented.WithMessage("The requested operation is not implemented.")
	}
	noSuch := func(e *s3err.Error) func(*request) error {
		return func(q *request) error {
			if _, err := g.requireBucket(q, permOwner); err != nil {
				return err
			}
			return e
		}
	}
	type route struct {
		method string
		match  mux.MatcherFunc
		name   string
		fn     func(*request) error
	}
	build := func(routes []route) *mux.Router {
		r := mux.NewRouter().SkipClean(true)
		for _, rt := range routes {
			x := r.NewRoute().Methods(rt.method)
			if rt.match != nil {
				x = x.MatcherFunc(rt.match)
			}
			x.Handler(&operation{name: rt.name, fn: rt.fn})
		}
		return r
	}
	const (
		GET, HEAD, PUT, POST, DELETE = http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete
	)

	g.service = build([]route{
		{GET, nil, "ListBuckets", g.listBuckets},
	})

	g.bucket = build([]route{
		{HEAD, nil, "HeadBucket", g.headBucket},
		{GET, has("location"), "GetBucketLocation", g.getBucketLocation},
		{GET, has("uploads"), "ListMultipartUploads", g.listMultipartUploads},
		{GET, has("acl"), "GetBucketAcl", g.getBucketACL},
		{GET, has("versioning"), "GetBucketVersioning", g.getBucketVersioning},
		{GET, has("versions"), "ListObjectVersions", g.listObjectVersions},
		{GET, has("policy"), "GetBucketPolicy", noSuch(s3err.ErrNoSuchBucketPolicy)},
		{GET, has("cors"), "GetBucketCors", noSuch(s3err.ErrNoSuchCORSConfiguration)},
		{GET, has("lifecycle"), "GetBucketLifecycle", noSuch(s3err.ErrNoSuchLifecycleConfiguration)},
		{GET, has("encryption"), "GetBucketEncryption", noSuch(s3err.ErrSSEConfigurationNotFound)},
		{GET, has("tagging"), "GetBucketTagging", noSuch(s3err.ErrNoSuchTagSet)},
		{GET, has("object-lock"), "GetObjectLockConfiguration", noSuch(s3err.ErrObjectLockConfigurationAbsent)},
		{GET, has("ownershipControls"), "GetBucketOwnershipControls", noSuch(s3err.ErrOwnershipControlsNotFound)},
		{GET, hasAny(bucketUnsupported), "NotImplemented", notImpl},
		{GET, nil, "ListObjects", g.listObjects},
		{PUT, has("acl"), "PutBucketAcl", g.putBucketACL},
		{PUT, hasAny(bucketUnsupported), "NotImplemented", notImpl},
		{PUT, nil, "CreateBucket", g.createBucket},
		{POST, has("delete"), "DeleteObjects", g.deleteObjects},
		{POST, nil, "PostObject", func(q *request) error {
			// A browser form upload: whoever may write to the bucket is
			// told it is not implemented.
			if err := g.authorize(q, q.bucket, permWrite); err != nil {
				return err
			}
			return s3err.ErrNotImplemented.WithMessage("POST object uploads are not implemented.")
		}},
		{DELETE, hasAny(bucketUnsupported), "NotImplemented", notImpl},
		{DELETE, nil, "DeleteBucket", g.deleteBucket},
	})

	g.object = build([]route{
		{HEAD, nil, "HeadObject", g.headObject},
		{GET, has("uploadId"), "ListParts", g.listParts},
		{GET, has("acl"), "GetObjectAcl", g.getObjectACL},
		{GET, has("tagging"), "GetObjectTagging", g.getObjectTagging},
		{GET, hasAny(objectUnsupported), "NotImplemented", notImpl},
		{GET, nil, "GetObject", g.getObject},
		{PUT, all(has("partNumber"), has("uploadId"), header("X-Amz-Copy-Source")), "UploadPartCopy", g.uploadPartCopy},
		{PUT, all(has("partNumber"), has("uploadId")), "UploadPart", g.uploadPart},
		{PUT, has("acl"), "PutObjectAcl", g.putObjectACL},
		{PUT, hasAny(append(objectUnsupported, "partNumber", "uploadId")), "NotImplemented", notImpl},
		{PUT, header("X-Amz-Copy-Source"), "CopyObject", g.copyObject},
		{PUT, nil, "PutObject", g.putObject},
		{POST, has("uploads"), "CreateMultipartUpload", g.createMultipartUpload},
		{POST, has("uploadId"), "CompleteMultipartUpload", g.completeMultipartUpload},
		{POST, nil, "NotImplemented", notImpl},
		{DELETE, has("uploadId"), "AbortMultipartUpload", g.abortMultipartUpload},
		{DELETE, hasAny(objectUnsupported), "NotImplemented", notImpl},
		{DELETE, nil, "DeleteObject", g.deleteObject},
	})
}

// has matches requests whose query names the parameter, with or without a
// value. It scans the raw query, so matching allocates nothing.
func has(name string) mux.MatcherFunc {
	return func(r *http.Request, _ *mux.RouteMatch) bool { return queryHas(r.URL.RawQuery, name) }
}

// hasAny matches requests whose query names any of the parameters.
func hasAny(names []string) mux.MatcherFunc {
	return func(r *http.Request, _ *mux.RouteMatch) bool {
		for _, n := range names {
			if queryHas(r.URL.RawQuery, n) {
				return true
			}
		}
		return false
	}
}

func header(name string) mux.MatcherFunc {
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request, _ *mux.RouteMatch) bool { return len(r.Header[name]) > 0 }
}

func all(ms ...mux.MatcherFunc) mux.MatcherFunc {
	return func(r *http.Request, m *mux.RouteMatch) bool {
		for _, f := range ms {
			if !f(r, m) {
				return false
			}
		}
		return true
	}
}

func queryHas(raw, name string) bool {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, _, _ := strings.Cut(kv, "=")
		if k == name {
			return true
		}
	}
	return false
}
