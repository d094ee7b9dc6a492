// Package gateway serves talus over the Amazon S3 REST API, so that S3 SDKs
// and tools (aws CLI, boto3, aws-sdk-go-v2, minio-go, rclone, s3cmd, restic)
// work against a talus cluster unchanged.
//
// A Gateway is stateless: it authenticates each request (AWS Signature
// Version 4 or the legacy Version 2, header or presigned), maps it onto the
// native client (package client) and answers in S3's XML. Several gateways
// may serve one cluster. Bodies stream straight through in both directions; nothing is
// buffered whole.
//
// # Addressing
//
// Requests name their bucket path-style (http://host/bucket/key) or, when
// Config.Domain is set, virtual-host-style (http://bucket.domain/key).
//
// # Access
//
// The root access key from Config may use every bucket. Other access keys
// are users stored in the metadata service (metaapi.User); a user may use
// the buckets it created (metaapi.Bucket.Owner is the creating access key)
// and those listed in its record. Users marked Root are treated like the
// root key.
//
// Buckets and objects also have an S3 canned ACL: private (the default),
// public-read, public-read-write or authenticated-read, set with x-amz-acl
// on CreateBucket, PutObject, CopyObject and CreateMultipartUpload, or with
// PutBucketAcl and PutObjectAcl (canned, or an AccessControlPolicy document
// equivalent to one). As in S3, a bucket's ACL lets others list it (READ)
// or create and delete objects in it (WRITE), and an object's ACL lets
// others read that object; anonymous requests get exactly what the ACLs
// grant to AllUsers, other users what they grant to AllUsers and
// AuthenticatedUsers. An object's owner is its bucket's owner, so
// bucket-owner-read and bucket-owner-full-control amount to private. A
// bucket's ACL is metaapi.Bucket.ACL. Changing an object's ACL rewrites its
// record, which, unlike in S3, updates its Last-Modified time.
//
// CORS preflight requests (OPTIONS) are answered as S3 answers them for a
// bucket without a CORS configuration.
//
// # How S3 attributes are stored
//
// An object's Content-Type is metaapi.Object.ContentType; its ETag is the
// one the metadata service computes (hex MD5, or "<md5 of part md5s>-N" for
// multipart uploads). Everything else lives in metaapi.Object.Meta under
// lower-case header names:
//
//	x-amz-meta-<name>        user metadata; <name> lower-cased, value as sent
//	                         (bytes that are not UTF-8 are read as ISO-8859-1,
//	                         stored as UTF-8 and sent back as they came).
//	                         s3fs, goofys and rclone keep POSIX attributes
//	                         here (x-amz-meta-mode, -uid, -gid, -mtime).
//	cache-control            stored headers, returned on GET and HEAD
//	content-disposition
//	content-encoding         (without the aws-chunked transfer coding)
//	content-language
//	expires
//	x-amz-website-redirect-location
//	x-amz-storage-class      only when not STANDARD
//	x-amz-checksum-<alg>     the object's checksum (crc32, crc32c, crc64nvme,
//	                         sha1, sha256), base64 as S3 sends it; returned
//	                         when the client asks with x-amz-checksum-mode.
//	x-amz-acl                the object's canned ACL, absent for private.
//	x-talus-latin1-meta      the x-amz-meta-<name> keys, comma-separated,
//	                         whose values came as ISO-8859-1.
//
// Parts of a multipart upload keep their checksum in metaapi.Part.Meta under
// the same x-amz-checksum-<alg> name. Keys outside this list are never sent
// to S3 clients, so other components may keep private attributes in Meta.
//
// # Limits
//
// Object keys are at most 1024 bytes (KeyTooLongError), user metadata at
// most 2 KiB (MetadataTooLarge), the request's header fields at most 8 KiB
// (RequestHeaderSectionTooLarge: the server's own MaxHeaderBytes should be
// larger, so that the gateway and not net/http refuses oversized headers,
// with S3's error XML), a single PUT or part at most 5 GiB (a body sent
// without Content-Length is streamed and cut off there), and XML request
// bodies at most a few MiB.
//
// # Not implemented
//
// Versioning, ACLs other than the canned ones above (grants to users or
// by e-mail, x-amz-grant-* headers), bucket policies, lifecycle, CORS
// configurations, website hosting, tagging, object lock,
// server-side encryption, GetObjectAttributes, POST (browser form) uploads
// and object-level checksums of multipart uploads (COMPOSITE and
// FULL_OBJECT; each part's checksum is verified and kept) get
// NotImplemented or are simply absent. A few read-only subresources answer
// as S3 does for a bucket without that configuration (GET ?versioning,
// ?acl, ?policy, ?tagging, ...), because many tools ask for them and give
// up on NotImplemented. SigV4a is not accepted.
package gateway
