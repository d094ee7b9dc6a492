package gateway_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/talusfs/talus/gateway"
	"github.com/talusfs/talus/meta/metaapi"
)

// anon sends an unauthenticated request and returns its status and body.
func anon(t *testing.T, method, path string, body []byte) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	resp, b := do(t, mustRequest(t, method, env.httpURL+path, rd))
	return resp.StatusCode, b
}

// wantAnon checks the status of an unauthenticated request, and its error
// code if it failed.
func wantAnon(t *testing.T, method, path string, body []byte, status int, code string) []byte {
	t.Helper()
	got, b := anon(t, method, path, body)
	if got != status || code != "" && method != "HEAD" && !bytes.Contains(b, []byte("<Code>"+code+"</Code>")) {
		t.Fatalf("anonymous %s %s: %d %s, want %d %s", method, path, got, b, status, code)
	}
	return b
}

// grantsOf renders an ACL's grants compactly: "Group:<uri>:READ", "ID:<id>:FULL_CONTROL".
func grantsOf(gs []types.Grant) []string {
	var out []string
	for _, g := range gs {
		who := "ID:" + aws.ToString(g.Grantee.ID)
		if g.Grantee.Type == types.TypeGroup {
			who = "Group:" + aws.ToString(g.Grantee.URI)
		}
		out = append(out, who+":"+string(g.Permission))
	}
	slices.Sort(out)
	return out
}

const (
	allUsers  = "http://acs.amazonaws.com/groups/global/AllUsers"
	authUsers = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
)

func TestBucketCannedACLs(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	must(t, env.client.Meta().PutUser(ctx, metaapi.User{AccessKey: "acl-dave", SecretKey: "dave-secret", Created: time.Now()}))
	dave := newS3(t, "acl-dave", "dave-secret")

	b := "acl-public-read"
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &b, ACL: types.BucketCannedACLPublicRead})
	must(t, err)
	putBytes(t, c, b, "private-obj", []byte("secret"))
	acl, err := c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: &b})
	must(t, err)
	if got, want := grantsOf(acl.Grants), []string{"Group:" + allUsers + ":READ", "ID:" + rootKey + ":FULL_CONTROL"}; !slices.Equal(got, want) {
		t.Errorf("public-read bucket grants %q, want %q", got, want)
	}

	// Anyone may list, and HEAD the bucket; objects keep their own
	// (private) ACL; a missing key is NoSuchKey to those who may list.
	if body := wantAnon(t, "GET", "/"+b, nil, 200, ""); !bytes.Contains(body, []byte("<Key>private-obj</Key>")) {
		t.Errorf("anonymous listing: %s", body)
	}
	wantAnon(t, "GET", "/"+b+"?list-type=2", nil, 200, "")
	wantAnon(t, "HEAD", "/"+b, nil, 200, "")
	wantAnon(t, "GET", "/"+b+"/private-obj", nil, 403, "AccessDenied")
	wantAnon(t, "HEAD", "/"+b+"/private-obj", nil, 403, "")
	wantAnon(t, "GET", "/"+b+"/missing", nil, 404, "NoSuchKey")
	wantAnon(t, "PUT", "/"+b+"/anon", []byte("x"), 403, "AccessDenied")
	wantAnon(t, "DELETE", "/"+b+"/private-obj", nil, 403, "AccessDenied")
	wantAnon(t, "GET", "/"+b+"?acl", nil, 403, "AccessDenied")
	wantAnon(t, "PUT", "/"+b+"?acl", nil, 403, "AccessDenied")
	wantAnon(t, "DELETE", "/"+b, nil, 403, "AccessDenied")
	wantAnon(t, "GET", "/", nil, 403, "AccessDenied")
	wantAnon(t, "PUT", "/anon-bucket", nil, 403, "AccessDenied")
	_, err = dave.ListObjects(ctx, &s3.ListObjectsInput{Bucket: &b})
	must(t, err)
	_, err = dave.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: aws.String("private-obj")})
	wantCode(t, err, "AccessDenied")
	_, err = dave.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("dave"), Body: strings.NewReader("x")})
	wantCode(t, err, "AccessDenied")
	_, err = dave.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: &b})
	wantCode(t, err, "AccessDenied")

	// Back to private: nothing for anyone, not even whether a key exists.
	_, err = c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: &b, ACL: types.BucketCannedACLPrivate})
	must(t, err)
	wantAnon(t, "GET", "/"+b, nil, 403, "AccessDenied")
	wantAnon(t, "GET", "/"+b+"/missing", nil, 403, "AccessDenied")
	wantAnon(t, "POST", "/"+b, []byte("form"), 403, "AccessDenied")
	wantAnon(t, "PUT", "/"+b+"?policy", []byte("{}"), 403, "AccessDenied")
	_, err = dave.ListObjects(ctx, &s3.ListObjectsInput{Bucket: &b})
	wantCode(t, err, "AccessDenied")
	acl, err = c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: &b})
	must(t, err)
	if got := grantsOf(acl.Grants); !slices.Equal(got, []string{"ID:" + rootKey + ":FULL_CONTROL"}) {
		t.Errorf("private bucket grants %q", got)
	}

	// public-read-write: anyone may write and delete objects, which are
	// private to others unless written with an ACL.
	_, err = c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: &b, ACL: types.BucketCannedACLPublicReadWrite})
	must(t, err)
	wantAnon(t, "PUT", "/"+b+"/anon", []byte("anonymous data"), 200, "")
	if got := getBytes(t, c, b, "anon"); string(got) != "anonymous data" {
		t.Errorf("anonymous PUT stored %q", got)
	}
	wantAnon(t, "GET", "/"+b+"/anon", nil, 403, "AccessDenied")
	putBytes(t, dave, b, "dave", []byte("from dave"))
	wantAnon(t, "DELETE", "/"+b+"/anon", nil, 204, "")
	wantAnon(t, "POST", "/"+b, []byte("form"), 501, "NotImplemented")
	wantAbsent(t, c, b, "anon")
	wantAnon(t, "GET", "/"+b+"?acl", nil, 403, "AccessDenied")
	wantAnon(t, "DELETE", "/"+b, nil, 403, "AccessDenied")

	// authenticated-read: any user may list, anonymous callers may not.
	_, err = c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: &b, ACL: types.BucketCannedACLAuthenticatedRead})
	must(t, err)
	wantAnon(t, "GET", "/"+b, nil, 403, "AccessDenied")
	_, err = dave.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &b})
	must(t, err)
	_, err = dave.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("dave"), Body: strings.NewReader("x")})
	wantCode(t, err, "AccessDenied")

	// An ACL document equivalent to a canned ACL is accepted; others are not.
	acl, err = c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: &b})
	must(t, err)
	policy := &types.AccessControlPolicy{Owner: acl.Owner, Grants: append(acl.Grants[:0:0], acl.Grants...)}
	for i, g := range policy.Grants {
		if g.Grantee.Type == types.TypeGroup {
			policy.Grants[i].Grantee = &types.Grantee{Type: types.TypeGroup, URI: aws.String(allUsers)}
		}
	}
	_, err = c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: &b, AccessControlPolicy: policy})
	must(t, err)
	wantAnon(t, "GET", "/"+b, nil, 200, "")
	policy.Grants = append(policy.Grants, types.Grant{Grantee: &types.Grantee{Type: types.TypeCanonicalUser, ID: aws.String("acl-dave")}, Permission: types.PermissionWrite})
	_, err = c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: &b, AccessControlPolicy: policy})
	wantCode(t, err, "NotImplemented")
	_, err = c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: &b, ACL: "no-such-acl"})
	wantCode(t, err, "InvalidArgument")
	wantAnon(t, "GET", "/"+b, nil, 200, "") // unchanged by the refusals

	// Gone: NoSuchBucket, to everyone.
	for _, k := range keys(t, c, b) {
		_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b, Key: &k})
		must(t, err)
	}
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &b})
	must(t, err)
	wantAnon(t, "GET", "/"+b+"/private-obj", nil, 404, "NoSuchBucket")
	wantAnon(t, "GET", "/"+b, nil, 404, "NoSuchBucket")
}

func TestObjectCannedACLs(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	must(t, env.client.Meta().PutUser(ctx, metaapi.User{AccessKey: "acl-erin", SecretKey: "erin-secret", Created: time.Now()}))
	erin := newS3(t, "acl-erin", "erin-secret")
	b := newBucket(t, c) // private
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("public"), Body: strings.NewReader("for all"), ACL: types.ObjectCannedACLPublicRead})
	must(t, err)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("members"), Body: strings.NewReader("for users"), ACL: types.ObjectCannedACLAuthenticatedRead})
	must(t, err)
	putBytes(t, c, b, "private", []byte("mine"))

	if got := wantAnon(t, "GET", "/"+b+"/public", nil, 200, ""); string(got) != "for all" {
		t.Errorf("anonymous GET: %q", got)
	}
	wantAnon(t, "HEAD", "/"+b+"/public", nil, 200, "")
	wantAnon(t, "GET", "/"+b+"/members", nil, 403, "AccessDenied")
	wantAnon(t, "GET", "/"+b+"/private", nil, 403, "AccessDenied")
	wantAnon(t, "GET", "/"+b, nil, 403, "AccessDenied")
	wantAnon(t, "PUT", "/"+b+"/public", []byte("defaced"), 403, "AccessDenied")
	wantAnon(t, "GET", "/"+b+"/public?acl", nil, 403, "AccessDenied")
	if got := getBytes(t, erin, b, "members"); string(got) != "for users" {
		t.Errorf("user GET: %q", got)
	}
	_, err = erin.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: aws.String("private")})
	wantCode(t, err, "AccessDenied")

	acl, err := c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: &b, Key: aws.String("public")})
	must(t, err)
	if got, want := grantsOf(acl.Grants), []string{"Group:" + allUsers + ":READ", "ID:" + rootKey + ":FULL_CONTROL"}; !slices.Equal(got, want) {
		t.Errorf("public-read object grants %q, want %q", got, want)
	}
	acl, err = c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: &b, Key: aws.String("members")})
	must(t, err)
	if got, want := grantsOf(acl.Grants), []string{"Group:" + authUsers + ":READ", "ID:" + rootKey + ":FULL_CONTROL"}; !slices.Equal(got, want) {
		t.Errorf("authenticated-read object grants %q, want %q", got, want)
	}

	// Changing an object's ACL keeps its data and metadata.
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b, Key: aws.String("public")})
	must(t, err)
	_, err = c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: &b, Key: aws.String("public"), ACL: types.ObjectCannedACLPrivate})
	must(t, err)
	wantAnon(t, "GET", "/"+b+"/public", nil, 403, "AccessDenied")
	_, err = c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: &b, Key: aws.String("private"), ACL: types.ObjectCannedACLPublicRead})
	must(t, err)
	wantAnon(t, "GET", "/"+b+"/private", nil, 200, "")
	after, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b, Key: aws.String("public")})
	must(t, err)
	if *after.ETag != *head.ETag || *after.ContentType != *head.ContentType {
		t.Errorf("PutObjectAcl changed the object: %v %v -> %v %v", *head.ETag, *head.ContentType, *after.ETag, *after.ContentType)
	}
	_, err = erin.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: &b, Key: aws.String("members"), ACL: types.ObjectCannedACLPublicRead})
	wantCode(t, err, "AccessDenied")

	// A copy gets the ACL its request asks for, not its source's; a
	// reader of a public object may copy it into its own bucket.
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b, Key: aws.String("copy"), CopySource: aws.String(b + "/private")})
	must(t, err)
	wantAnon(t, "GET", "/"+b+"/copy", nil, 403, "AccessDenied")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b, Key: aws.String("copy"), CopySource: aws.String(b + "/members"), ACL: types.ObjectCannedACLPublicRead})
	must(t, err)
	if got := wantAnon(t, "GET", "/"+b+"/copy", nil, 200, ""); string(got) != "for users" {
		t.Errorf("copy: %q", got)
	}
	eb := newBucket(t, erin)
	_, err = erin.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &eb, Key: aws.String("took"), CopySource: aws.String(b + "/members")})
	must(t, err)
	_, err = erin.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &eb, Key: aws.String("took"), CopySource: aws.String(b + "/public")})
	wantCode(t, err, "AccessDenied")

	// Multipart uploads take their ACL at creation.
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b, Key: aws.String("mp"), ACL: types.ObjectCannedACLPublicRead})
	must(t, err)
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &b, Key: aws.String("mp"), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("one part")})
	must(t, err)
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b, Key: aws.String("mp"), UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}})
	must(t, err)
	if got := wantAnon(t, "GET", "/"+b+"/mp", nil, 200, ""); string(got) != "one part" {
		t.Errorf("multipart: %q", got)
	}
}

// In us-east-1 the owner re-creating its bucket gets 200 and the ACL it
// asks for, as in S3; in other regions BucketAlreadyOwnedByYou.
func TestBucketRecreate(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := "recreate-bucket"
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &b, ACL: types.BucketCannedACLPublicRead})
	must(t, err)
	putBytes(t, c, b, "kept", []byte("x"))
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &b})
	must(t, err)
	if got := keys(t, c, b); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("keys after re-creation: %q", got)
	}
	wantAnon(t, "GET", "/"+b, nil, 403, "AccessDenied")

	gw, err := gateway.New(gateway.Config{Client: env.client, RootAccessKey: rootKey, RootSecretKey: rootSecret, Logger: env.log, Region: "eu-west-1"})
	must(t, err)
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()
	eu := newS3At(t, srv.URL, http.DefaultClient, rootKey, rootSecret, true)
	_, err = eu.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &b, ACL: types.BucketCannedACLPublicRead})
	wantCode(t, err, "BucketAlreadyOwnedByYou")
	wantAnon(t, "GET", "/"+b, nil, 403, "AccessDenied")
}
