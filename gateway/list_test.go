package gateway_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

var listKeys = []string{"a/1", "a/2", "a/b/3", "b/1", "c", "d e+f&g<h", "x/y/z", "zz", "é/ü"}

func TestListObjects(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	for _, k := range listKeys {
		putBytes(t, c, b, k, []byte(k))
	}
	sorted := slices.Sorted(slices.Values(listKeys))

	// V2, every page size, with and without a delimiter.
	for _, delim := range []string{"", "/"} {
		for max := int32(1); max <= 10; max++ {
			var gotKeys, gotPrefixes []string
			in := &s3.ListObjectsV2Input{Bucket: &b, MaxKeys: &max}
			if delim != "" {
				in.Delimiter = &delim
			}
			pages := 0
			for {
				out, err := c.ListObjectsV2(ctx, in)
				must(t, err)
				pages++
				if int(*out.KeyCount) != len(out.Contents)+len(out.CommonPrefixes) || *out.KeyCount > max {
					t.Fatalf("KeyCount %d with %d keys, %d prefixes, max %d", *out.KeyCount, len(out.Contents), len(out.CommonPrefixes), max)
				}
				for _, o := range out.Contents {
					gotKeys = append(gotKeys, *o.Key)
					if *o.ETag != `"`+md5hex([]byte(*o.Key))+`"` || *o.Size != int64(len(*o.Key)) || o.StorageClass != types.ObjectStorageClassStandard || o.Owner != nil {
						t.Errorf("entry %+v", o)
					}
				}
				for _, p := range out.CommonPrefixes {
					gotPrefixes = append(gotPrefixes, *p.Prefix)
				}
				if !*out.IsTruncated {
					break
				}
				in.ContinuationToken = out.NextContinuationToken
				if pages > 20 {
					t.Fatal("listing does not end")
				}
			}
			wantKeys, wantPrefixes := sorted, []string(nil)
			if delim == "/" {
				wantKeys, wantPrefixes = []string{"c", "d e+f&g<h", "zz"}, []string{"a/", "b/", "x/", "é/"}
			}
			if !slices.Equal(gotKeys, wantKeys) || !slices.Equal(gotPrefixes, wantPrefixes) {
				t.Errorf("delimiter %q max %d: keys %q prefixes %q", delim, max, gotKeys, gotPrefixes)
			}
		}
	}

	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &b, Prefix: aws.String("a/"), Delimiter: aws.String("/"), FetchOwner: aws.Bool(true)})
	must(t, err)
	if len(out.Contents) != 2 || len(out.CommonPrefixes) != 1 || *out.CommonPrefixes[0].Prefix != "a/b/" || out.Contents[0].Owner == nil || *out.Contents[0].Owner.ID != rootKey {
		t.Errorf("prefix a/: %+v %+v", out.Contents, out.CommonPrefixes)
	}
	out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &b, StartAfter: aws.String("c")})
	must(t, err)
	if len(out.Contents) != 4 || *out.Contents[0].Key != "d e+f&g<h" {
		t.Errorf("start-after c: %d keys", len(out.Contents))
	}
	out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &b, MaxKeys: aws.Int32(0)})
	must(t, err)
	if len(out.Contents) != 0 || *out.IsTruncated {
		t.Errorf("max-keys 0: %d keys, truncated %v", len(out.Contents), *out.IsTruncated)
	}
	out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &b, ContinuationToken: aws.String(""), StartAfter: aws.String("zz")})
	must(t, err)
	if out.ContinuationToken == nil || *out.ContinuationToken != "" || *out.StartAfter != "zz" || len(out.Contents) != 1 {
		t.Errorf("empty continuation token: token %v, start-after %v, %d keys", out.ContinuationToken, out.StartAfter, len(out.Contents))
	}
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &b, ContinuationToken: aws.String("!!!")})
	wantCode(t, err, "InvalidArgument")

	// V1 with markers.
	var got []string
	marker := ""
	for i := 0; ; i++ {
		out, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: &b, Marker: &marker, MaxKeys: aws.Int32(2), Delimiter: aws.String("/")})
		must(t, err)
		for _, o := range out.Contents {
			got = append(got, *o.Key)
			if o.Owner == nil {
				t.Errorf("v1 entry without owner")
			}
		}
		for _, p := range out.CommonPrefixes {
			got = append(got, *p.Prefix)
		}
		if !*out.IsTruncated {
			break
		}
		if out.NextMarker == nil {
			t.Fatal("v1 with delimiter: truncated page without NextMarker")
		}
		marker = *out.NextMarker
		if i > 10 {
			t.Fatal("v1 listing does not end")
		}
	}
	// Each page holds its keys, then its prefixes.
	slices.Sort(got)
	if want := []string{"a/", "b/", "c", "d e+f&g<h", "x/", "zz", "é/"}; !slices.Equal(got, want) {
		t.Errorf("v1: %q, want %q", got, want)
	}
}

// TestListEncodingURL checks the raw XML, since SDKs differ in whether they
// decode encoding-type=url answers for you.
func TestListEncodingURL(t *testing.T) {
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	for _, k := range listKeys {
		putBytes(t, c, b, k, []byte(k))
	}
	var res struct {
		Contents []struct{ Key string }
		Prefix   string
		Common   []struct{ Prefix string } `xml:"CommonPrefixes"`
		Encoding string                    `xml:"EncodingType"`
		Next     string                    `xml:"NextContinuationToken"`
	}
	q := url.Values{"list-type": {"2"}, "encoding-type": {"url"}, "delimiter": {"/"}, "prefix": {""}}
	req := rawRequest(t, "GET", env.httpURL+"/"+b+"?"+q.Encode(), nil, nil, rootKey, rootSecret, time.Now())
	resp, body := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	must(t, xml.Unmarshal(body, &res))
	var keys, prefixes []string
	for _, k := range res.Contents {
		keys = append(keys, k.Key)
		if dk, err := url.QueryUnescape(k.Key); err != nil || !slices.Contains(listKeys, dk) {
			t.Errorf("encoded key %q does not decode to a stored key", k.Key)
		}
	}
	for _, p := range res.Common {
		prefixes = append(prefixes, p.Prefix)
	}
	if res.Encoding != "url" || !slices.Contains(keys, "d%20e%2Bf%26g%3Ch") || !slices.Contains(prefixes, "%C3%A9/") {
		t.Errorf("encoded listing: keys %q prefixes %q encoding %q", keys, prefixes, res.Encoding)
	}

	q.Set("encoding-type", "base64")
	req = rawRequest(t, "GET", env.httpURL+"/"+b+"?"+q.Encode(), nil, nil, rootKey, rootSecret, time.Now())
	resp, body = do(t, req)
	wantRawError(t, resp, body, http.StatusBadRequest, "InvalidArgument")
}

func TestDeleteObjects(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	for i := range 6 {
		putBytes(t, c, b, fmt.Sprintf("k%d", i), []byte("x"))
	}
	ids := func(ks ...string) []types.ObjectIdentifier {
		var out []types.ObjectIdentifier
		for _, k := range ks {
			out = append(out, types.ObjectIdentifier{Key: aws.String(k)})
		}
		return out
	}
	out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &b, Delete: &types.Delete{Objects: ids("k0", "k1", "never-existed")}})
	must(t, err)
	if len(out.Deleted) != 3 || len(out.Errors) != 0 {
		t.Errorf("delete: %d deleted, errors %+v", len(out.Deleted), out.Errors)
	}
	out, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &b, Delete: &types.Delete{Objects: ids("k2", strings.Repeat("x", 1025)), Quiet: aws.Bool(true)}})
	must(t, err)
	if len(out.Deleted) != 0 || len(out.Errors) != 1 || *out.Errors[0].Code != "KeyTooLongError" {
		t.Errorf("quiet delete: deleted %+v errors %+v", out.Deleted, out.Errors)
	}
	if got := keys(t, c, b); !slices.Equal(got, []string{"k3", "k4", "k5"}) {
		t.Errorf("after delete: %q", got)
	}

	var many []types.ObjectIdentifier
	for i := range 1001 {
		many = append(many, types.ObjectIdentifier{Key: aws.String(fmt.Sprint(i))})
	}
	_, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &b, Delete: &types.Delete{Objects: many}})
	wantCode(t, err, "MalformedXML")

	req := rawRequest(t, "POST", env.httpURL+"/"+b+"?delete", []byte("<Delete><Object><Key>k3</Key></Object"), nil, rootKey, rootSecret, time.Now())
	resp, body := do(t, req)
	wantRawError(t, resp, body, http.StatusBadRequest, "MalformedXML")
	// A wrong Content-MD5 deletes nothing.
	req = rawRequest(t, "POST", env.httpURL+"/"+b+"?delete", []byte("<Delete><Object><Key>k3</Key></Object></Delete>"),
		http.Header{"Content-Md5": {"1B2M2Y8AsgTpgAmY7PhCfg=="}}, rootKey, rootSecret, time.Now())
	resp, body = do(t, req)
	wantRawError(t, resp, body, http.StatusBadRequest, "BadDigest")
	if got := keys(t, c, b); !slices.Equal(got, []string{"k3", "k4", "k5"}) {
		t.Errorf("after refused deletes: %q", got)
	}

	_, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("no-such-bucket-x"), Delete: &types.Delete{Objects: ids("a")}})
	wantCode(t, err, "NoSuchBucket")
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b, Key: aws.String("k3")})
	must(t, err)
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b, Key: aws.String("k3")})
	must(t, err)
}
