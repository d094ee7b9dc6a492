package meta

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/talusfs/talus/meta/metaapi"
)

// Multipart keyspace.
const (
	pUpload = 'U' // U<bucket>\x00<key>\x00<upload id> -> metaapi.Upload
	pPart   = 'P' // P<upload id>\x00<part number, 5 digits> -> partRecord
	pUser   = 'K' // K<access key> -> metaapi.User
)

func upKey(bucket, key, id string) []byte {
	k := make([]byte, 0, 3+len(bucket)+len(key)+len(id))
	k = append(k, pUpload)
	k = append(k, bucket...)
	k = append(k, 0)
	k = append(k, key...)
	k = append(k, 0)
	return append(k, id...)
}

// uploadPrefix is the key prefix of a bucket's uploads: U<bucket>\x00.
func uploadPrefix(bucket string) []byte {
	k := upKey(bucket, "", "")
	return k[:len(k)-1]
}

// splitUploadKey splits what follows uploadPrefix into key and upload id.
// The id has no NUL, so the last NUL separates them whatever the key holds.
func splitUploadKey(rest []byte) (key, id string) {
	s := string(rest)
	i := strings.LastIndexByte(s, 0)
	return s[:i], s[i+1:]
}

func partKey(id string, n int) []byte {
	return fmt.Appendf([]byte{pPart}, "%s\x00%05d", id, n)
}

func partPrefix(id string) []byte { return append(append([]byte{pPart}, id...), 0) }

func userKey(ak string) []byte { return append([]byte{pUser}, ak...) }

// partRecord is a part as stored: segments by reference.
type partRecord struct {
	metaapi.Part
	SegIDs []string `json:"segIDs,omitempty"`
}

func loadUpload(txn *badger.Txn, bucket, key, id string) (metaapi.Upload, error) {
	var u metaapi.Upload
	err := getJSON(txn, upKey(bucket, key, id), &u)
	if errors.Is(err, badger.ErrKeyNotFound) {
		err = fmt.Errorf("%w: %s for %s/%s", metaapi.ErrNoSuchUpload, id, bucket, key)
	}
	return u, err
}

func (s *store) createUpload(u metaapi.Upload) error {
	if err := metaapi.ValidateKey(u.Key); err != nil {
		return err
	}
	return s.update(func(txn *badger.Txn) error {
		if err := requireBucket(txn, u.Bucket); err != nil {
			return err
		}
		return setJSON(txn, upKey(u.Bucket, u.Key, u.ID), u)
	})
}

func (s *store) upload(bucket, key, id string) (metaapi.Upload, error) {
	var u metaapi.Upload
	err := s.view(func(txn *badger.Txn) error {
		var err error
		u, err = loadUpload(txn, bucket, key, id)
		return err
	})
	return u, err
}

func (s *store) commitPart(req metaapi.PartCommitRequest, due time.Time) error {
	p := req.Part
	if p.Number < 1 || p.Number > metaapi.MaxPartNumber {
		return fmt.Errorf("%w: part number %d", metaapi.ErrInvalidArgument, p.Number)
	}
	var total int64
	for _, seg := range p.Segments {
		total += seg.Size
	}
	if total != p.Size {
		return fmt.Errorf("%w: part %d segments hold %d bytes, not %d", metaapi.ErrInvalidArgument, p.Number, total, p.Size)
	}
	check := metaapi.Object{Size: p.Size, Segments: p.Segments}
	if err := validateSegments(&check); err != nil {
		return err
	}
	return s.update(func(txn *badger.Txn) error {
		if _, err := loadUpload(txn, req.Bucket, req.Key, req.UploadID); err != nil {
			return err
		}
		rec := partRecord{Part: p}
		rec.Segments = nil
		for _, seg := range p.Segments {
			if err := addSegmentRef(txn, seg); err != nil {
				return err
			}
			rec.SegIDs = append(rec.SegIDs, seg.ID)
		}
		var old partRecord
		err := getJSON(txn, partKey(req.UploadID, p.Number), &old)
		switch {
		case err == nil:
			if err := releaseSegments(txn, old.SegIDs, due); err != nil {
				return err
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		return setJSON(txn, partKey(req.UploadID, p.Number), rec)
	})
}

// parts returns an upload's parts in number order.
func uploadParts(txn *badger.Txn, id string) ([]partRecord, error) {
	var ps []partRecord
	it := txn.NewIterator(badger.IteratorOptions{Prefix: partPrefix(id), PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var p partRecord
		if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &p) }); err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// completeUpload stitches the chosen parts' segment lists into the object,
// releases parts left out, and drops the upload, in one transaction.
func (s *store) completeUpload(req metaapi.CompleteRequest, now, due time.Time) (metaapi.Object, error) {
	var o metaapi.Object
	if len(req.Parts) == 0 {
		return o, fmt.Errorf("%w: a multipart upload needs at least one part", metaapi.ErrInvalidArgument)
	}
	err := s.update(func(txn *badger.Txn) error {
		u, err := loadUpload(txn, req.Bucket, req.Key, req.UploadID)
		if err != nil {
			return err
		}
		stored, err := uploadParts(txn, req.UploadID)
		if err != nil {
			return err
		}
		byNum := make(map[int]partRecord, len(stored))
		for _, p := range stored {
			byNum[p.Number] = p
		}
		o = metaapi.Object{Bucket: req.Bucket, Key: req.Key, ContentType: u.ContentType, Meta: u.Meta, Modified: now}
		rec := objectRecord{}
		md5s := md5.New()
		used := map[int]bool{}
		for i, cp := range req.Parts {
			if i > 0 && cp.Number <= req.Parts[i-1].Number {
				return fmt.Errorf("%w: part %d follows part %d", metaapi.ErrInvalidPartOrder, cp.Number, req.Parts[i-1].Number)
			}
			p, ok := byNum[cp.Number]
			if !ok || !etagEqual(cp.ETag, p.ETag) {
				return fmt.Errorf("%w: part %d with ETag %s was not uploaded", metaapi.ErrInvalidPart, cp.Number, cp.ETag)
			}
			sum, err := hex.DecodeString(p.ETag)
			if err != nil {
				return fmt.Errorf("part %d has a malformed ETag %q", p.Number, p.ETag)
			}
			md5s.Write(sum)
			used[p.Number] = true
			o.Size += p.Size
			rec.SegIDs = append(rec.SegIDs, p.SegIDs...)
		}
		// Sizes are checked only once every named part is known to exist,
		// so a missing part reports InvalidPart, as in S3.
		for i, cp := range req.Parts[:len(req.Parts)-1] {
			if size := byNum[cp.Number].Size; size < metaapi.MinPartSize {
				return fmt.Errorf("%w: part %d (#%d of %d) is %d bytes, below the %d-byte minimum", metaapi.ErrEntityTooSmall, cp.Number, i+1, len(req.Parts), size, metaapi.MinPartSize)
			}
		}
		o.ETag = fmt.Sprintf("%s-%d", hex.EncodeToString(md5s.Sum(nil)), len(req.Parts))
		if o.Meta == nil {
			o.Meta = map[string]string{}
		}
		o.Meta[metaapi.MetaPartSizes] = partSizes(req.Parts, byNum)
		cur, err := loadObject(txn, req.Bucket, req.Key)
		if err != nil {
			return err
		}
		if err := checkCond(cur, req.Cond); err != nil {
			return err
		}
		rec.Object = o
		if err := setJSON(txn, objectKey(o.Bucket, o.Key), rec); err != nil {
			return err
		}
		if cur != nil {
			if err := releaseSegments(txn, cur.SegIDs, due); err != nil {
				return err
			}
		}
		for _, p := range stored {
			if !used[p.Number] {
				if err := releaseSegments(txn, p.SegIDs, due); err != nil {
					return err
				}
			}
			if err := txn.Delete(partKey(req.UploadID, p.Number)); err != nil {
				return err
			}
		}
		return txn.Delete(upKey(req.Bucket, req.Key, req.UploadID))
	})
	return o, err
}

func partSizes(parts []metaapi.CompletePart, byNum map[int]partRecord) string {
	var b strings.Builder
	for i, cp := range parts {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d", byNum[cp.Number].Size)
	}
	return b.String()
}

// abortUpload releases an upload's parts and forgets it.
func (s *store) abortUpload(bucket, key, id string, due time.Time) error {
	return s.update(func(txn *badger.Txn) error {
		if _, err := loadUpload(txn, bucket, key, id); err != nil {
			return err
		}
		return dropUpload(txn, bucket, key, id, due)
	})
}

func dropUpload(txn *badger.Txn, bucket, key, id string, due time.Time) error {
	parts, err := uploadParts(txn, id)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := releaseSegments(txn, p.SegIDs, due); err != nil {
			return err
		}
		if err := txn.Delete(partKey(id, p.Number)); err != nil {
			return err
		}
	}
	return txn.Delete(upKey(bucket, key, id))
}

func (s *store) listParts(bucket, key, id string, after, max int) (metaapi.PartList, error) {
	if max <= 0 || max > 1000 {
		max = 1000
	}
	var pl metaapi.PartList
	err := s.view(func(txn *badger.Txn) error {
		u, err := loadUpload(txn, bucket, key, id)
		if err != nil {
			return err
		}
		pl.Upload = u
		pl.Parts = []metaapi.Part{}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: partPrefix(id), PrefetchValues: true})
		defer it.Close()
		for it.Seek(partKey(id, after+1)); it.Valid(); it.Next() {
			if len(pl.Parts) == max {
				pl.Truncated = true
				pl.Next = pl.Parts[len(pl.Parts)-1].Number
				return nil
			}
			var p partRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &p) }); err != nil {
				return err
			}
			pl.Parts = append(pl.Parts, p.Part)
		}
		return nil
	})
	return pl, err
}

// listUploads lists uploads in (key, upload id) order, S3-style.
func (s *store) listUploads(req metaapi.UploadListRequest) (metaapi.UploadList, error) {
	max := req.Max
	if max <= 0 || max > 1000 {
		max = 1000
	}
	res := metaapi.UploadList{Uploads: []metaapi.Upload{}}
	err := s.view(func(txn *badger.Txn) error {
		if err := requireBucket(txn, req.Bucket); err != nil {
			return err
		}
		base := uploadPrefix(req.Bucket)
		prefix := append(append([]byte(nil), base...), req.Prefix...)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		n := 0
		lastCP := ""
		for it.Rewind(); it.Valid(); it.Next() {
			key, id := splitUploadKey(it.Item().Key()[len(base):])
			if key < req.KeyMarker || (key == req.KeyMarker && (req.UploadIDMarker == "" || id <= req.UploadIDMarker)) {
				continue
			}
			if req.Delimiter != "" {
				if j := strings.Index(key[len(req.Prefix):], req.Delimiter); j >= 0 {
					cp := key[:len(req.Prefix)+j+len(req.Delimiter)]
					if cp == lastCP || cp == req.KeyMarker {
						continue
					}
					if n == max {
						res.Truncated = true
						return nil
					}
					lastCP = cp
					res.CommonPrefixes = append(res.CommonPrefixes, cp)
					res.NextKeyMarker, res.NextUploadIDMarker = cp, ""
					n++
					continue
				}
			}
			if n == max {
				res.Truncated = true
				return nil
			}
			var u metaapi.Upload
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &u) }); err != nil {
				return err
			}
			res.Uploads = append(res.Uploads, u)
			res.NextKeyMarker, res.NextUploadIDMarker = key, id
			n++
		}
		return nil
	})
	if !res.Truncated {
		res.NextKeyMarker, res.NextUploadIDMarker = "", ""
	}
	return res, err
}

// copyObject makes the destination share the source's segments.
func (s *store) copyObject(req metaapi.CopyRequest, now, due time.Time) (metaapi.Object, error) {
	var o metaapi.Object
	if err := metaapi.ValidateKey(req.DstKey); err != nil {
		return o, err
	}
	err := s.update(func(txn *badger.Txn) error {
		for _, b := range []string{req.SrcBucket, req.DstBucket} {
			if err := requireBucket(txn, b); err != nil {
				return err
			}
		}
		src, err := loadObject(txn, req.SrcBucket, req.SrcKey)
		if err != nil {
			return err
		}
		if src == nil {
			return fmt.Errorf("%w: %s/%s", metaapi.ErrNoSuchKey, req.SrcBucket, req.SrcKey)
		}
		if err := checkCond(src, req.SrcCond); err != nil {
			return err
		}
		dst, err := loadObject(txn, req.DstBucket, req.DstKey)
		if err != nil {
			return err
		}
		if err := checkCond(dst, req.DstCond); err != nil {
			return err
		}
		rec := *src
		rec.Bucket, rec.Key, rec.Modified = req.DstBucket, req.DstKey, now
		if req.ReplaceMeta {
			rec.ContentType, rec.Meta = req.ContentType, req.Meta
		}
		for _, id := range rec.SegIDs {
			if err := addSegmentRef(txn, metaapi.Segment{ID: id, Existing: true}); err != nil {
				return err
			}
		}
		if err := setJSON(txn, objectKey(rec.Bucket, rec.Key), rec); err != nil {
			return err
		}
		if dst != nil {
			if err := releaseSegments(txn, dst.SegIDs, due); err != nil {
				return err
			}
		}
		o = rec.Object
		o.Inline = nil
		return nil
	})
	return o, err
}

func (s *store) putUser(u metaapi.User) error {
	if u.AccessKey == "" || u.SecretKey == "" || strings.ContainsAny(u.AccessKey, "\x00/ ") {
		return fmt.Errorf("%w: a user needs an access key (no spaces or slashes) and a secret key", metaapi.ErrInvalidArgument)
	}
	return s.update(func(txn *badger.Txn) error {
		if ok, err := exists(txn, userKey(u.AccessKey)); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("%w: %s", metaapi.ErrUserExists, u.AccessKey)
		}
		return setJSON(txn, userKey(u.AccessKey), u)
	})
}

func (s *store) user(ak string) (metaapi.User, error) {
	var u metaapi.User
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, userKey(ak), &u) })
	if errors.Is(err, badger.ErrKeyNotFound) {
		err = fmt.Errorf("%w: %s", metaapi.ErrNoSuchUser, ak)
	}
	return u, err
}

func (s *store) users() ([]metaapi.User, error) {
	us := []metaapi.User{}
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pUser}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var u metaapi.User
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &u) }); err != nil {
				return err
			}
			u.SecretKey = ""
			us = append(us, u)
		}
		return nil
	})
	return us, err
}

func (s *store) deleteUser(ak string) error {
	return s.update(func(txn *badger.Txn) error {
		if ok, err := exists(txn, userKey(ak)); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("%w: %s", metaapi.ErrNoSuchUser, ak)
		}
		return txn.Delete(userKey(ak))
	})
}
