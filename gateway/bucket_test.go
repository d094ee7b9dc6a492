package gateway_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestBucketLifecycle(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	name := "lifecycle-bucket"

	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{
		Bucket:                    aws.String(name),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest1},
	})
	must(t, err)
	// In us-east-1 the owner may create its bucket again.
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	must(t, err)

	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)})
	must(t, err)
	loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(name)})
	must(t, err)
	if loc.LocationConstraint != "" {
		t.Errorf("location = %q, want empty (us-east-1)", loc.LocationConstraint)
	}

	list, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	must(t, err)
	found := false
	for _, b := range list.Buckets {
		if *b.Name == name {
			found = true
			if b.CreationDate == nil || time.Since(*b.CreationDate) > time.Minute {
				t.Errorf("creation date %v", b.CreationDate)
			}
		}
	}
	if !found || list.Owner == nil || *list.Owner.ID != rootKey {
		t.Fatalf("ListBuckets: bucket found %v, owner %+v", found, list.Owner)
	}

	// Paged.
	var paged []string
	in := &s3.ListBucketsInput{MaxBuckets: aws.Int32(2)}
	for i := 0; ; i++ {
		page, err := c.ListBuckets(ctx, in)
		must(t, err)
		if len(page.Buckets) > 2 {
			t.Fatalf("page of %d buckets", len(page.Buckets))
		}
		for _, b := range page.Buckets {
			paged = append(paged, *b.Name)
		}
		if page.ContinuationToken == nil {
			break
		}
		in.ContinuationToken = page.ContinuationToken
		if i > 100 {
			t.Fatal("bucket listing does not end")
		}
	}
	var all []string
	for _, b := range list.Buckets {
		all = append(all, *b.Name)
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged bucket list %q, unpaged %q", paged, all)
	}

	putBytes(t, c, name, "k", []byte("x"))
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	wantCode(t, err, "BucketNotEmpty")
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: aws.String("k")})
	must(t, err)
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	must(t, err)
	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)})
	wantStatus(t, err, http.StatusNotFound)
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	wantCode(t, err, "NoSuchBucket")
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
	wantCode(t, err, "NoSuchBucket")
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(name), Key: aws.String("k")})
	wantCode(t, err, "NoSuchBucket")
}

func TestInvalidBucketNames(t *testing.T) {
	ctx := context.Background()
	c := newS3HTTP(t, rootKey, rootSecret)
	for _, name := range []string{"ab", "UpperCase", "a..b", "-leading", "trailing-", "192.168.1.1", "under_score", strings.Repeat("a", 64)} {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
		wantCode(t, err, "InvalidBucketName")
	}
	list, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	must(t, err)
	for _, b := range list.Buckets {
		if strings.Contains(*b.Name, "..") || strings.HasPrefix(*b.Name, "-") {
			t.Errorf("invalid bucket %q was created", *b.Name)
		}
	}
}

func TestCreateBucketMalformedXML(t *testing.T) {
	body := []byte("<CreateBucketConfiguration><LocationConstraint>eu")
	req := rawRequest(t, "PUT", env.httpURL+"/malformed-cfg", body, nil, rootKey, rootSecret, time.Now())
	resp, b := do(t, req)
	wantRawError(t, resp, b, http.StatusBadRequest, "MalformedXML")
	c := newS3HTTP(t, rootKey, rootSecret)
	_, err := c.HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String("malformed-cfg")})
	wantStatus(t, err, http.StatusNotFound)
}

func TestSubresources(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	putBytes(t, c, b, "obj", []byte("data"))

	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &b})
	must(t, err)
	if v.Status != "" {
		t.Errorf("versioning status %q", v.Status)
	}
	acl, err := c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: &b})
	must(t, err)
	if len(acl.Grants) != 1 || acl.Grants[0].Permission != types.PermissionFullControl || *acl.Owner.ID != rootKey {
		t.Errorf("bucket ACL %+v", acl)
	}
	oacl, err := c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: &b, Key: aws.String("obj")})
	must(t, err)
	if len(oacl.Grants) != 1 || *oacl.Grants[0].Grantee.ID != rootKey {
		t.Errorf("object ACL %+v", oacl)
	}
	_, err = c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: &b, ACL: types.BucketCannedACLPrivate})
	must(t, err)
	_, err = c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: &b, GrantRead: aws.String(`id="someone"`)})
	wantCode(t, err, "NotImplemented")
	_, err = c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: &b, Key: aws.String("obj"), ACL: types.ObjectCannedACLPrivate})
	must(t, err)
	_, err = c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &b, VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	wantCode(t, err, "NotImplemented")
	_, err = c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: &b})
	wantCode(t, err, "NoSuchBucketPolicy")
	_, err = c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &b})
	wantCode(t, err, "NoSuchLifecycleConfiguration")
	_, err = c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: &b, Policy: aws.String("{}")})
	wantCode(t, err, "NotImplemented")
	_, err = c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: &b, Key: aws.String("obj"), Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}})
	wantCode(t, err, "NotImplemented")
	tags, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &b, Key: aws.String("obj")})
	must(t, err)
	if len(tags.TagSet) != 0 {
		t.Errorf("tags %+v", tags.TagSet)
	}
	// A subresource PUT must never fall through to PutObject.
	if got := getBytes(t, c, b, "obj"); string(got) != "data" {
		t.Errorf("object changed to %q", got)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("tagged"), Body: strings.NewReader("x"), Tagging: aws.String("a=b")})
	wantCode(t, err, "NotImplemented")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("sse"), Body: strings.NewReader("x"), ServerSideEncryption: types.ServerSideEncryptionAes256})
	wantCode(t, err, "NotImplemented")
	got := keys(t, c, b)
	if !slices.Equal(got, []string{"obj"}) {
		t.Errorf("keys after refused writes: %q", got)
	}

	vs, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &b})
	must(t, err)
	if len(vs.Versions) != 1 || *vs.Versions[0].VersionId != "null" || !*vs.Versions[0].IsLatest {
		t.Errorf("versions %+v", vs.Versions)
	}
}
