package gateway

import (
	"bytes"
	"encoding/xml"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/talusfs/talus/gateway/internal/s3err"
	"github.com/talusfs/talus/meta/metaapi"
)

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

type ownerXML struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

func ownerOf(key string) ownerXML { return ownerXML{ID: key, DisplayName: key} }

// requireBucket checks that q's bucket exists and that the caller has perm
// in it, asking the metadata service rather than the cache: it answers
// HeadBucket and friends, which clients use to see whether a bucket exists.
func (g *Gateway) requireBucket(q *request, perm permission) (metaapi.Bucket, error) {
	b, err := g.meta.Bucket(q.ctx(), q.bucket)
	if err != nil {
		return b, err
	}
	g.buckets.put(b, time.Now())
	if !q.user.mayUse(b.Name, b.Owner) && !grants(b.ACL, perm, q.user) {
		return b, s3err.ErrAccessDenied
	}
	return b, nil
}

// bucketOwner is the owner S3 documents show for a bucket.
func (g *Gateway) bucketOwner(b metaapi.Bucket) ownerXML {
	if b.Owner == "" {
		return ownerOf(g.cfg.RootAccessKey)
	}
	return ownerOf(b.Owner)
}

type listAllMyBucketsResult struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner   ownerXML
	Buckets struct {
		Bucket []bucketXML
	}
	ContinuationToken string `xml:",omitempty"`
	Prefix            string `xml:",omitempty"`
}

type bucketXML struct {
	Name         string
	CreationDate string
	BucketRegion string `xml:",omitempty"`
}

// maxListBuckets is the most buckets one ListBuckets answer holds when the
// client pages with max-buckets.
const maxListBuckets = 10000

// listBuckets lists the buckets the caller owns or was given; root sees
// its own and those without an owner (created outside S3). Clients may page
// with max-buckets and continuation-token, and filter by prefix.
func (g *Gateway) listBuckets(q *request) error {
	if q.user.anonymous {
		return s3err.ErrAccessDenied
	}
	limit, err := intParam(q, "max-buckets", maxListBuckets)
	if err != nil || limit < 1 || limit > maxListBuckets {
		return s3err.ErrInvalidArgument.WithMessage("max-buckets must be an integer between 1 and 10000")
	}
	after := ""
	if tok := q.param("continuation-token"); tok != "" {
		if after, err = decodeToken(tok); err != nil {
			return err
		}
	}
	prefix := q.param("prefix")
	bs, err := g.meta.Buckets(q.ctx())
	if err != nil {
		return err
	}
	res := listAllMyBucketsResult{Owner: ownerOf(q.user.accessKey), Prefix: prefix}
	res.Buckets.Bucket = make([]bucketXML, 0, min(len(bs), limit))
	for _, b := range bs {
		visible := b.Owner == q.user.accessKey || slices.Contains(q.user.buckets, b.Name) || (q.user.root && b.Owner == "")
		if !visible || b.Name <= after || !strings.HasPrefix(b.Name, prefix) {
			continue
		}
		if len(res.Buckets.Bucket) == limit {
			res.ContinuationToken = encodeToken(res.Buckets.Bucket[limit-1].Name)
			break
		}
		res.Buckets.Bucket = append(res.Buckets.Bucket, bucketXML{Name: b.Name, CreationDate: s3Time(b.Created), BucketRegion: g.cfg.Region})
	}
	return writeXML(q, http.StatusOK, &res)
}

type createBucketConfiguration struct {
	XMLName            xml.Name `xml:"CreateBucketConfiguration"`
	LocationConstraint string
}

func (g *Gateway) createBucket(q *request) error {
	if q.user.anonymous {
		return s3err.ErrAccessDenied
	}
	if err := metaapi.ValidateBucketName(q.bucket); err != nil {
		return s3err.ErrInvalidBucketName.WithCause(err)
	}
	if err := unsupportedHeaders(q.r.Header); err != nil {
		return err
	}
	acl, err := requestACL(q.r.Header)
	if err != nil {
		return err
	}
	if v := q.r.Header.Get("X-Amz-Bucket-Object-Lock-Enabled"); v != "" && v != "false" {
		return s3err.ErrNotImplemented.WithMessage("Object lock is not implemented.")
	}
	if q.bodyLength() != 0 {
		data, err := readSmallBody(q.body(), q.bodyLength(), 64<<10)
		if err != nil {
			return err
		}
		// The location is accepted and ignored: a talus cluster is one
		// region, whatever clients call it.
		if len(bytes.TrimSpace(data)) > 0 {
			var cfg createBucketConfiguration
			if err := xml.Unmarshal(data, &cfg); err != nil {
				return s3err.ErrMalformedXML.WithCause(err)
			}
		}
	}
	err = g.meta.CreateBucket(q.ctx(), metaapi.Bucket{Name: q.bucket, Created: time.Now().UTC(), Owner: q.user.accessKey, ACL: acl})
	g.buckets.forget(q.bucket)
	if errors.Is(err, metaapi.ErrBucketExists) {
		b, berr := g.meta.Bucket(q.ctx(), q.bucket)
		if berr != nil || !(b.Owner == q.user.accessKey || (q.user.root && b.Owner == "")) {
			return s3err.ErrBucketAlreadyExists
		}
		if g.cfg.Region != "us-east-1" {
			return s3err.ErrBucketAlreadyOwnedByYou
		}
		// S3 keeps, in us-east-1 only, its original behaviour: the owner
		// re-creating a bucket succeeds, and the bucket gets the ACL the
		// request asks for.
		err = nil
		if b.ACL != acl {
			err = g.meta.SetBucketACL(q.ctx(), q.bucket, acl)
			g.buckets.forget(q.bucket)
		}
	}
	if errors.Is(err, metaapi.ErrInvalidName) {
		return s3err.ErrInvalidBucketName.WithCause(err)
	}
	if err != nil {
		return err
	}
	h := q.w.Header()
	h["Location"] = []string{"/" + q.bucket}
	h["Content-Length"] = zeroLength
	q.w.WriteHeader(http.StatusOK)
	return nil
}

var zeroLength = []string{"0"}

func (g *Gateway) deleteBucket(q *request) error {
	if _, err := g.requireBucket(q, permOwner); err != nil {
		return err
	}
	err := g.meta.DeleteBucket(q.ctx(), q.bucket)
	g.buckets.forget(q.bucket)
	if err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *Gateway) headBucket(q *request) error {
	if _, err := g.requireBucket(q, permRead); err != nil {
		return err
	}
	h := q.w.Header()
	h["X-Amz-Bucket-Region"] = []string{g.cfg.Region}
	h["Content-Length"] = zeroLength
	q.w.WriteHeader(http.StatusOK)
	return nil
}

type locationConstraint struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ LocationConstraint"`
	Region  string   `xml:",chardata"`
}

func (g *Gateway) getBucketLocation(q *request) error {
	if _, err := g.requireBucket(q, permOwner); err != nil {
		return err
	}
	// us-east-1 is spelled as no constraint at all, as S3 does.
	region := g.cfg.Region
	if region == "us-east-1" {
		region = ""
	}
	return writeXML(q, http.StatusOK, &locationConstraint{Region: region})
}

type versioningConfiguration struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ VersioningConfiguration"`
}

// getBucketVersioning answers that versioning was never enabled.
func (g *Gateway) getBucketVersioning(q *request) error {
	if _, err := g.requireBucket(q, permOwner); err != nil {
		return err
	}
	return writeXML(q, http.StatusOK, &versioningConfiguration{})
}

type accessControlPolicy struct {
	XMLName           xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ AccessControlPolicy"`
	Owner             ownerXML
	AccessControlList struct {
		Grant []grantXML
	}
}

type grantXML struct {
	Grantee struct {
		XMLNSXSI    string `xml:"xmlns:xsi,attr"`
		Type        string `xml:"xsi:type,attr"`
		ID          string `xml:"ID,omitempty"`
		DisplayName string `xml:"DisplayName,omitempty"`
		URI         string `xml:"URI,omitempty"`
	}
	Permission string
}

func (g *Gateway) getBucketACL(q *request) error {
	b, err := g.requireBucket(q, permOwner)
	if err != nil {
		return err
	}
	return writeXML(q, http.StatusOK, policyFor(g.bucketOwner(b), b.ACL))
}

func (g *Gateway) putBucketACL(q *request) error {
	b, err := g.requireBucket(q, permOwner)
	if err != nil {
		return err
	}
	acl, err := g.aclRequest(q, g.ownerID(b.Owner))
	if err != nil {
		return err
	}
	if acl != b.ACL {
		err = g.meta.SetBucketACL(q.ctx(), q.bucket, acl)
		g.buckets.forget(q.bucket)
		if err != nil {
			return err
		}
	}
	q.w.Header()["Content-Length"] = zeroLength
	q.w.WriteHeader(http.StatusOK)
	return nil
}
