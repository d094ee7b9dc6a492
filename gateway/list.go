package gateway

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"strconv"

	"github.com/talusfs/talus/gateway/internal/s3err"
	"github.com/talusfs/talus/meta/metaapi"
)

const maxListKeys = 1000

type listBucketResult struct {
	XMLName               xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string
	Prefix                string
	Marker                *string `xml:",omitempty"` // v1
	NextMarker            string  `xml:",omitempty"` // v1
	ContinuationToken     *string `xml:",omitempty"` // v2, when sent
	NextContinuationToken string  `xml:",omitempty"` // v2
	StartAfter            *string `xml:",omitempty"` // v2, when sent
	KeyCount              *int    `xml:",omitempty"` // v2
	MaxKeys               int
	Delimiter             string `xml:",omitempty"`
	EncodingType          string `xml:",omitempty"`
	IsTruncated           bool
	Contents              []objectXML
	CommonPrefixes        []prefixXML
}

type objectXML struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	Owner        *ownerXML `xml:",omitempty"`
	StorageClass string
}

type prefixXML struct {
	Prefix string
}

// listParams are the parameters shared by the listing operations.
type listParams struct {
	prefix, delimiter string
	max               int // what the client asked for, echoed back
	limit             int // what is asked of the metadata service
	urlEncode         bool
}

func readListParams(q *request, maxParam string) (listParams, error) {
	p := listParams{prefix: q.param("prefix"), delimiter: q.param("delimiter"), max: maxListKeys}
	if v := q.param(maxParam); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, s3err.ErrInvalidArgument.WithMessage("Provided " + maxParam + " not an integer or within integer range")
		}
		p.max = n
	}
	p.limit = min(p.max, maxListKeys)
	switch e := q.param("encoding-type"); e {
	case "":
	case "url", "URL":
		p.urlEncode = true
	default:
		return p, s3err.ErrInvalidArgument.WithMessage("Invalid Encoding Method specified in Request")
	}
	return p, nil
}

// enc encodes a name for the response as encoding-type=url asks.
func (p *listParams) enc(s string) string {
	if p.urlEncode {
		return s3URLEncode(s)
	}
	return s
}

func (p *listParams) encodingType() string {
	if p.urlEncode {
		return "url"
	}
	return ""
}

// list asks the metadata service for one page. A limit of 0 lists nothing,
// as S3 does for max-keys=0.
func (g *Gateway) list(q *request, p *listParams, after string) (metaapi.ListResult, error) {
	if p.limit == 0 {
		_, err := g.buckets.get(q.ctx(), q.bucket) // still NoSuchBucket if missing
		return metaapi.ListResult{}, err
	}
	return g.c.List(q.ctx(), metaapi.ListRequest{Bucket: q.bucket, Prefix: p.prefix, Delimiter: p.delimiter, After: after, Max: p.limit})
}

// fill adds a page's entries to res.
func (p *listParams) fill(res *listBucketResult, page metaapi.ListResult, owner *ownerXML) {
	res.Contents = make([]objectXML, 0, len(page.Objects))
	for i := range page.Objects {
		o := &page.Objects[i]
		sc := o.Meta[keyStorageClass]
		if sc == "" {
			sc = storageStandard
		}
		res.Contents = append(res.Contents, objectXML{
			Key:          p.enc(o.Key),
			LastModified: s3Time(o.Modified),
			ETag:         quoteETag(o.ETag),
			Size:         o.Size,
			Owner:        owner,
			StorageClass: sc,
		})
	}
	for _, cp := range page.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, prefixXML{Prefix: p.enc(cp)})
	}
}

// listObjects serves ListObjects (v1) and, with list-type=2, ListObjectsV2.
func (g *Gateway) listObjects(q *request) error {
	if err := g.authorize(q, q.bucket, permRead); err != nil {
		return err
	}
	switch lt := q.param("list-type"); lt {
	case "":
		return g.listObjectsV1(q)
	case "2":
		return g.listObjectsV2(q)
	default:
		return s3err.ErrInvalidArgument.WithMessage("Invalid list type specified: " + lt)
	}
}

func (g *Gateway) listObjectsV1(q *request) error {
	p, err := readListParams(q, "max-keys")
	if err != nil {
		return err
	}
	marker := q.param("marker")
	page, err := g.list(q, &p, marker)
	if err != nil {
		return err
	}
	owner, err := g.listOwner(q)
	if err != nil {
		return err
	}
	encMarker := p.enc(marker)
	res := listBucketResult{
		Name: q.bucket,
		// Unlike v2, v1 sends the prefix as it is even with
		// encoding-type=url (and SDKs decode accordingly).
		Prefix:       p.prefix,
		Marker:       &encMarker,
		MaxKeys:      p.max,
		Delimiter:    p.enc(p.delimiter),
		EncodingType: p.encodingType(),
		IsTruncated:  page.Truncated,
	}
	// S3 sends NextMarker only with a delimiter; without one, clients
	// continue from the last key.
	if page.Truncated && p.delimiter != "" {
		res.NextMarker = p.enc(page.Next)
	}
	p.fill(&res, page, owner)
	return writeXML(q, http.StatusOK, &res)
}

func (g *Gateway) listObjectsV2(q *request) error {
	p, err := readListParams(q, "max-keys")
	if err != nil {
		return err
	}
	startAfter := q.param("start-after")
	token := q.param("continuation-token")
	after := startAfter
	if token != "" {
		if after, err = decodeToken(token); err != nil {
			return err
		}
	}
	page, err := g.list(q, &p, after)
	if err != nil {
		return err
	}
	var owner *ownerXML
	if q.param("fetch-owner") == "true" {
		if owner, err = g.listOwner(q); err != nil {
			return err
		}
	}
	count := len(page.Objects) + len(page.CommonPrefixes)
	res := listBucketResult{
		Name:   q.bucket,
		Prefix: p.enc(p.prefix),

		KeyCount:     &count,
		MaxKeys:      p.max,
		Delimiter:    p.enc(p.delimiter),
		EncodingType: p.encodingType(),
		IsTruncated:  page.Truncated,
	}
	if q.hasParam("continuation-token") {
		res.ContinuationToken = &token
	}
	if q.hasParam("start-after") {
		sa := p.enc(startAfter)
		res.StartAfter = &sa
	}
	if page.Truncated {
		res.NextContinuationToken = encodeToken(page.Next)
	}
	p.fill(&res, page, owner)
	return writeXML(q, http.StatusOK, &res)
}

// Continuation tokens are the key to continue after, opaque to clients.
func encodeToken(after string) string { return base64.RawURLEncoding.EncodeToString([]byte(after)) }

func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", s3err.ErrInvalidArgument.WithMessage("The continuation token provided is incorrect")
	}
	return string(b), nil
}

// listOwner is the owner listings show for every object: objects have no
// owner of their own in talus, they belong to the bucket's.
func (g *Gateway) listOwner(q *request) (*ownerXML, error) {
	b, err := g.buckets.get(q.ctx(), q.bucket)
	if err != nil {
		return nil, err
	}
	o := ownerOf(g.ownerID(b.owner))
	return &o, nil
}

type listVersionsResult struct {
	XMLName             xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListVersionsResult"`
	Name                string
	Prefix              string
	KeyMarker           string
	VersionIdMarker     string
	NextKeyMarker       string `xml:",omitempty"`
	NextVersionIdMarker string `xml:",omitempty"`
	MaxKeys             int
	Delimiter           string `xml:",omitempty"`
	EncodingType        string `xml:",omitempty"`
	IsTruncated         bool
	Version             []versionXML
	CommonPrefixes      []prefixXML
}

type versionXML struct {
	Key          string
	VersionId    string
	IsLatest     bool
	LastModified string
	ETag         string
	Size         int64
	Owner        ownerXML
	StorageClass string
}

// listObjectVersions lists a bucket that never had versioning: every
// object is its only version, "null".
func (g *Gateway) listObjectVersions(q *request) error {
	if err := g.authorize(q, q.bucket, permRead); err != nil {
		return err
	}
	p, err := readListParams(q, "max-keys")
	if err != nil {
		return err
	}
	keyMarker := q.param("key-marker")
	page, err := g.list(q, &p, keyMarker)
	if err != nil {
		return err
	}
	owner, err := g.listOwner(q)
	if err != nil {
		return err
	}
	res := listVersionsResult{
		Name:            q.bucket,
		Prefix:          p.enc(p.prefix),
		KeyMarker:       p.enc(keyMarker),
		VersionIdMarker: q.param("version-id-marker"),
		MaxKeys:         p.max,
		Delimiter:       p.enc(p.delimiter),
		EncodingType:    p.encodingType(),
		IsTruncated:     page.Truncated,
	}
	if page.Truncated {
		res.NextKeyMarker = p.enc(page.Next)
		res.NextVersionIdMarker = "null"
	}
	for i := range page.Objects {
		o := &page.Objects[i]
		sc := o.Meta[keyStorageClass]
		if sc == "" {
			sc = storageStandard
		}
		res.Version = append(res.Version, versionXML{
			Key: p.enc(o.Key), VersionId: "null", IsLatest: true,
			LastModified: s3Time(o.Modified), ETag: quoteETag(o.ETag), Size: o.Size,
			Owner: *owner, StorageClass: sc,
		})
	}
	for _, cp := range page.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, prefixXML{Prefix: p.enc(cp)})
	}
	return writeXML(q, http.StatusOK, &res)
}

// s3URLEncode encodes a key as S3 does for encoding-type=url: everything
// but unreserved characters and '/' is percent-encoded (a space as %20,
// which every client's decoder reads back as a space, unlike '+').
func s3URLEncode(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !keepUnencoded(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keepUnencoded(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

func keepUnencoded(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~' || c == '/'
}
