package gateway

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/gateway/internal/s3checksum"
	"github.com/talusfs/talus/gateway/internal/s3err"
	"github.com/talusfs/talus/meta/metaapi"
)

const (
	maxCompleteBody = 4 << 20 // 10000 parts with checksums fit comfortably
	maxListParts    = 1000
	maxListUploads  = 1000
)

type initiateMultipartUploadResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
	Bucket   string
	Key      string
	UploadId string
}

func (g *Gateway) createMultipartUpload(q *request) error {
	if err := checkKey(q.key); err != nil {
		return err
	}
	if err := g.authorize(q, q.bucket, permWrite); err != nil {
		return err
	}
	ctype, meta, err := objectAttrs(q.r.Header)
	if err != nil {
		return err
	}
	var alg s3checksum.Algorithm
	if v := q.r.Header.Get("X-Amz-Checksum-Algorithm"); v != "" {
		if alg, err = s3checksum.ParseAlgorithm(v); err != nil {
			return err
		}
	}
	u, err := g.meta.CreateUpload(q.ctx(), metaapi.Upload{
		Bucket: q.bucket, Key: q.key, ContentType: ctype, Meta: meta, Owner: q.user.accessKey,
	})
	if err != nil {
		return err
	}
	if alg != s3checksum.None {
		q.w.Header()["X-Amz-Checksum-Algorithm"] = []string{alg.String()}
	}
	return writeXML(q, http.StatusOK, &initiateMultipartUploadResult{Bucket: q.bucket, Key: q.key, UploadId: u.ID})
}

// partNumber reads the partNumber parameter.
func partNumber(q *request) (int, error) {
	n, err := strconv.Atoi(q.param("partNumber"))
	if err != nil || n < 1 || n > metaapi.MaxPartNumber {
		return 0, s3err.ErrInvalidArgument.WithMessage("Part number must be an integer between 1 and 10000, inclusive")
	}
	return n, nil
}

func (g *Gateway) uploadPart(q *request) error {
	n, err := partNumber(q)
	if err != nil {
		return err
	}
	if err := g.authorize(q, q.bucket, permWrite); err != nil {
		return err
	}
	body, meta, sum, err := verifiedBody(q, nil, true)
	if err != nil {
		return err
	}
	body, size, err := putBody(q, body)
	if err != nil {
		return err
	}
	part, err := g.c.PutPart(q.ctx(), q.bucket, q.key, q.param("uploadId"), n, body, size, client.PartOptions{Meta: meta, MD5: sum.md5})
	if err != nil {
		return err
	}
	h := q.w.Header()
	h["Etag"] = []string{quoteETag(part.ETag)}
	if sum.alg != s3checksum.None {
		h[sum.alg.Header()] = []string{sum.value()}
	}
	h["Content-Length"] = zeroLength
	q.w.WriteHeader(http.StatusOK)
	return nil
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyPartResult"`
	LastModified string
	ETag         string
}

// uploadPartCopy writes a part from a range of another object. Unlike
// CopyObject the bytes do move: a part's segments must be its own, while a
// source range rarely falls on segment boundaries.
func (g *Gateway) uploadPartCopy(q *request) error {
	n, err := partNumber(q)
	if err != nil {
		return err
	}
	if err := g.authorize(q, q.bucket, permWrite); err != nil {
		return err
	}
	srcBucket, srcKey, err := parseCopySource(q.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	srcAccess, err := g.access(q, srcBucket)
	if err != nil {
		return err
	}
	src, err := g.meta.Object(q.ctx(), srcBucket, srcKey)
	if err := srcAccess.mayRead(q, &src, err); err != nil {
		return err
	}
	if e := readConditions(q.r.Header, "X-Amz-Copy-Source-").evaluate(src.ETag, src.Modified, false); e != nil {
		return e
	}
	off, size := int64(0), src.Size
	if v := q.r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		if off, size, err = parseCopyRange(v, src.Size); err != nil {
			return err
		}
	}
	if size > maxPutSize {
		return s3err.ErrInvalidRequest.WithMessage("The specified copy source is larger than the maximum allowable size for a copy source: 5368709120")
	}
	rd, err := g.c.Open(q.ctx(), src, off, size)
	if err != nil {
		return err
	}
	defer rd.Close()
	part, err := g.c.PutPart(q.ctx(), q.bucket, q.key, q.param("uploadId"), n, rd, size, client.PartOptions{})
	if err != nil {
		return err
	}
	return writeXML(q, http.StatusOK, &copyPartResult{LastModified: s3Time(part.Modified), ETag: quoteETag(part.ETag)})
}

// parseCopyRange reads x-amz-copy-source-range, which unlike Range must be
// one explicit, satisfiable "bytes=first-last".
func parseCopyRange(v string, size int64) (off, n int64, err error) {
	bad := s3err.ErrInvalidArgument.WithMessage("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
	spec, ok := strings.CutPrefix(v, "bytes=")
	if !ok {
		return 0, 0, bad
	}
	a, b, ok := strings.Cut(spec, "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, bad
	}
	if last >= size {
		return 0, 0, s3err.ErrInvalidRange.WithMessage("Range specified is not valid for source object of size: " + strconv.FormatInt(size, 10))
	}
	return first, last - first + 1, nil
}

type completeMultipartUpload struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber int
		ETag       string
	} `xml:"Part"`
}

type completeMultipartUploadResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
	Location string
	Bucket   string
	Key      string
	ETag     string
}

func (g *Gateway) completeMultipartUpload(q *request) error {
	if err := g.authorize(q, q.bucket, permWrite); err != nil {
		return err
	}
	var req completeMultipartUpload
	if err := readXML(q, maxCompleteBody, &req); err != nil {
		return err
	}
	if len(req.Parts) == 0 {
		return s3err.ErrMalformedXML.WithMessage("You must specify at least one part.")
	}
	parts := make([]metaapi.CompletePart, 0, len(req.Parts))
	for i, p := range req.Parts {
		if p.PartNumber < 1 || p.PartNumber > metaapi.MaxPartNumber {
			return s3err.ErrInvalidPart
		}
		part := metaapi.CompletePart{Number: p.PartNumber, ETag: unquoteETag(p.ETag)}
		switch {
		case i > 0 && p.PartNumber < req.Parts[i-1].PartNumber:
			return s3err.ErrInvalidPartOrder
		case i > 0 && p.PartNumber == req.Parts[i-1].PartNumber:
			// A part uploaded twice, listed twice: the later upload
			// is the one that counts, as in RGW.
			parts[len(parts)-1] = part
		default:
			parts = append(parts, part)
		}
	}
	cond := metaapi.Preconditions{IfMatch: q.r.Header.Get("If-Match"), IfNoneMatch: q.r.Header.Get("If-None-Match")}
	obj, err := g.c.CompleteMultipart(q.ctx(), q.bucket, q.key, q.param("uploadId"), parts, cond)
	if errors.Is(err, metaapi.ErrNoSuchUpload) {
		// A retried completion whose first attempt succeeded (its answer
		// lost, say) finds the upload gone but the object it made.
		if cur, herr := g.c.Head(q.ctx(), q.bucket, q.key); herr == nil && cur.ETag == multipartETag(parts) {
			obj, err = cur, nil
		}
	}
	if err != nil {
		return g.condError(q, cond, err)
	}
	return writeXML(q, http.StatusOK, &completeMultipartUploadResult{
		Location: g.location(q),
		Bucket:   q.bucket,
		Key:      q.key,
		ETag:     quoteETag(obj.ETag),
	})
}

// multipartETag is the ETag S3 gives the object assembled from parts: the
// MD5 of their binary MD5s, then "-" and their count. It is "" if a part's
// ETag is not an MD5.
func multipartETag(parts []metaapi.CompletePart) string {
	h := md5.New()
	var sum [md5.Size]byte
	for _, p := range parts {
		if len(p.ETag) != 2*md5.Size {
			return ""
		}
		if _, err := hex.Decode(sum[:], []byte(p.ETag)); err != nil {
			return ""
		}
		h.Write(sum[:])
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts))
}

// location is the URL of q's object.
func (g *Gateway) location(q *request) string {
	scheme := "http"
	if q.r.TLS != nil {
		scheme = "https"
	}
	path := "/" + q.bucket + "/" + q.key
	if q.vhost {
		path = "/" + q.key
	}
	u := url.URL{Scheme: scheme, Host: q.r.Host, Path: path}
	return u.String()
}

func (g *Gateway) abortMultipartUpload(q *request) error {
	if err := g.authorize(q, q.bucket, permWrite); err != nil {
		return err
	}
	if err := g.c.AbortMultipart(q.ctx(), q.bucket, q.key, q.param("uploadId")); err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

type listPartsResult struct {
	XMLName              xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListPartsResult"`
	Bucket               string
	Key                  string
	UploadId             string
	Initiator            ownerXML
	Owner                ownerXML
	StorageClass         string
	PartNumberMarker     int
	NextPartNumberMarker int
	MaxParts             int
	IsTruncated          bool
	Part                 []partXML
}

type partXML struct {
	PartNumber        int
	LastModified      string
	ETag              string
	Size              int64
	ChecksumCRC32     string `xml:",omitempty"`
	ChecksumCRC32C    string `xml:",omitempty"`
	ChecksumCRC64NVME string `xml:",omitempty"`
	ChecksumSHA1      string `xml:",omitempty"`
	ChecksumSHA256    string `xml:",omitempty"`
}

// intParam reads an optional non-negative integer parameter.
func intParam(q *request, name string, def int) (int, error) {
	v := q.param(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, s3err.ErrInvalidArgument.WithMessage("Provided " + name + " not an integer or within integer range")
	}
	return n, nil
}

func (g *Gateway) listParts(q *request) error {
	if err := g.authorize(q, q.bucket, permWrite); err != nil {
		return err
	}
	marker, err := intParam(q, "part-number-marker", 0)
	if err != nil {
		return err
	}
	max, err := intParam(q, "max-parts", maxListParts)
	if err != nil {
		return err
	}
	pl, err := g.meta.Parts(q.ctx(), q.bucket, q.key, q.param("uploadId"), marker, min(max, maxListParts))
	if err != nil {
		return err
	}
	who := ownerOf(pl.Upload.Owner)
	if pl.Upload.Owner == "" {
		who = ownerOf(g.cfg.RootAccessKey)
	}
	res := listPartsResult{
		Bucket: q.bucket, Key: q.key, UploadId: q.param("uploadId"),
		Initiator: who, Owner: who, StorageClass: storageClassOf(pl.Upload.Meta),
		PartNumberMarker: marker, MaxParts: max, IsTruncated: pl.Truncated,
		Part: make([]partXML, 0, len(pl.Parts)),
	}
	for _, p := range pl.Parts {
		res.Part = append(res.Part, partXML{
			PartNumber:        p.Number,
			LastModified:      s3Time(p.Modified),
			ETag:              quoteETag(p.ETag),
			Size:              p.Size,
			ChecksumCRC32:     p.Meta[s3checksum.CRC32.Header()],
			ChecksumCRC32C:    p.Meta[s3checksum.CRC32C.Header()],
			ChecksumCRC64NVME: p.Meta[s3checksum.CRC64NVME.Header()],
			ChecksumSHA1:      p.Meta[s3checksum.SHA1.Header()],
			ChecksumSHA256:    p.Meta[s3checksum.SHA256.Header()],
		})
		res.NextPartNumberMarker = p.Number
	}
	if pl.Truncated && pl.Next > 0 {
		res.NextPartNumberMarker = pl.Next
	}
	return writeXML(q, http.StatusOK, &res)
}

func storageClassOf(meta map[string]string) string {
	if sc := meta[keyStorageClass]; sc != "" {
		return sc
	}
	return storageStandard
}

type listMultipartUploadsResult struct {
	XMLName            xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListMultipartUploadsResult"`
	Bucket             string
	KeyMarker          string
	UploadIdMarker     string
	NextKeyMarker      string
	NextUploadIdMarker string
	Delimiter          string `xml:",omitempty"`
	Prefix             string
	EncodingType       string `xml:",omitempty"`
	MaxUploads         int
	IsTruncated        bool
	Upload             []uploadXML
	CommonPrefixes     []prefixXML
}

type uploadXML struct {
	Key          string
	UploadId     string
	Initiator    ownerXML
	Owner        ownerXML
	StorageClass string
	Initiated    string
}

func (g *Gateway) listMultipartUploads(q *request) error {
	if err := g.authorize(q, q.bucket, permRead); err != nil {
		return err
	}
	p, err := readListParams(q, "max-uploads")
	if err != nil {
		return err
	}
	req := metaapi.UploadListRequest{
		Bucket: q.bucket, Prefix: p.prefix, Delimiter: p.delimiter,
		KeyMarker: q.param("key-marker"), UploadIDMarker: q.param("upload-id-marker"),
		Max: min(p.max, maxListUploads),
	}
	var page metaapi.UploadList
	if req.Max > 0 {
		if page, err = g.meta.Uploads(q.ctx(), req); err != nil {
			return err
		}
	} else if _, err := g.buckets.get(q.ctx(), q.bucket); err != nil {
		return err
	}
	res := listMultipartUploadsResult{
		Bucket: q.bucket, KeyMarker: p.enc(req.KeyMarker), UploadIdMarker: req.UploadIDMarker,
		NextKeyMarker: p.enc(page.NextKeyMarker), NextUploadIdMarker: page.NextUploadIDMarker,
		Delimiter: p.enc(p.delimiter), Prefix: p.enc(p.prefix), EncodingType: p.encodingType(),
		MaxUploads: p.max, IsTruncated: page.Truncated,
	}
	for _, u := range page.Uploads {
		who := ownerOf(u.Owner)
		if u.Owner == "" {
			who = ownerOf(g.cfg.RootAccessKey)
		}
		res.Upload = append(res.Upload, uploadXML{
			Key: p.enc(u.Key), UploadId: u.ID, Initiator: who, Owner: who,
			StorageClass: storageClassOf(u.Meta), Initiated: s3Time(u.Initiated),
		})
	}
	for _, cp := range page.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, prefixXML{Prefix: p.enc(cp)})
	}
	return writeXML(q, http.StatusOK, &res)
}
