package gateway

import (
	"encoding/xml"
	"net/http"
	"sync"

	"github.com/talusfs/talus/gateway/internal/s3err"
	"github.com/talusfs/talus/meta/metaapi"
)

const (
	maxDeleteKeys = 1000
	// 1000 keys of up to 1024 bytes each, escaped, with their markup.
	maxDeleteBody = 8 << 20
	// deleteWorkers bounds the metadata calls one DeleteObjects makes at
	// once.
	deleteWorkers = 16
)

type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Quiet   bool
	Objects []struct {
		Key       string
		VersionId string
	} `xml:"Object"`
}

type deleteResult struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
	Deleted []deletedXML
	Error   []deleteErrorXML
}

type deletedXML struct {
	Key       string
	VersionId string `xml:",omitempty"`
}

type deleteErrorXML struct {
	Key       string
	VersionId string `xml:",omitempty"`
	Code      string
	Message   string
}

func (g *Gateway) deleteObjects(q *request) error {
	if err := g.authorize(q, q.bucket, permWrite); err != nil {
		return err
	}
	// The body's Content-MD5 or checksum, if sent, must match before any
	// key is deleted: the whole body is read and verified first.
	body, _, _, err := verifiedBody(q, nil, false)
	if err != nil {
		return err
	}
	data, err := readSmallBody(body, q.bodyLength(), maxDeleteBody)
	if err != nil {
		return err
	}
	var req deleteRequest
	if err := xml.Unmarshal(data, &req); err != nil {
		return s3err.ErrMalformedXML.WithCause(err)
	}
	if len(req.Objects) == 0 || len(req.Objects) > maxDeleteKeys {
		return s3err.ErrMalformedXML.WithMessage("The request must name between 1 and 1000 objects.")
	}
	if _, err := g.buckets.get(q.ctx(), q.bucket); err != nil {
		return err
	}

	errs := make([]*s3err.Error, len(req.Objects))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(deleteWorkers, len(req.Objects)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				errs[i] = g.deleteOne(q, req.Objects[i].Key, req.Objects[i].VersionId)
			}
		}()
	}
	for i := range req.Objects {
		work <- i
	}
	close(work)
	wg.Wait()

	var res deleteResult
	for i, o := range req.Objects {
		if e := errs[i]; e != nil {
			res.Error = append(res.Error, deleteErrorXML{Key: o.Key, VersionId: o.VersionId, Code: e.Code, Message: e.Message})
		} else if !req.Quiet {
			res.Deleted = append(res.Deleted, deletedXML{Key: o.Key, VersionId: o.VersionId})
		}
	}
	return writeXML(q, http.StatusOK, &res)
}

func (g *Gateway) deleteOne(q *request, key, version string) *s3err.Error {
	if err := checkKey(key); err != nil {
		return g.s3error(err)
	}
	if version != "" && version != "null" {
		return s3err.ErrNoSuchVersion
	}
	if err := g.meta.DeleteObject(q.ctx(), q.bucket, key, metaapi.Preconditions{}); err != nil {
		e := g.s3error(err)
		if e.HTTPStatus >= 500 {
			g.log.Error("s3 batch delete of one key failed", "request", q.id, "bucket", q.bucket, "key", key, "err", err)
		}
		return e
	}
	return nil
}
