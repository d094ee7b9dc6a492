package meta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/talusfs/talus/meta/metaapi"
)

// rename moves an object, or every object under a prefix, to a new name in
// one transaction. Records move; segments stay where they are, so no data is
// copied and the shards keep their reference counts. An object replaced at
// the destination has its segments released like any overwrite.
//
// A directory rename is bounded by Badger's transaction size (tens of
// thousands of keys); a larger one fails with ErrInvalidArgument and changes
// nothing, rather than becoming visible half done.
func (s *store) rename(req metaapi.RenameRequest, now, due time.Time) error {
	if err := metaapi.ValidateKey(req.To); err != nil {
		return err
	}
	if req.From == "" {
		return fmt.Errorf("%w: rename without a source", metaapi.ErrInvalidArgument)
	}
	if req.From == req.To {
		return nil
	}
	if req.Dir {
		if !strings.HasSuffix(req.From, "/") || !strings.HasSuffix(req.To, "/") {
			return fmt.Errorf("%w: directory rename needs prefixes ending in /", metaapi.ErrInvalidArgument)
		}
		if strings.HasPrefix(req.To, req.From) {
			return fmt.Errorf("%w: cannot move %q inside itself", metaapi.ErrInvalidArgument, req.From)
		}
	}
	err := s.update(func(txn *badger.Txn) error {
		if err := requireBucket(txn, req.Bucket); err != nil {
			return err
		}
		if !req.Dir {
			return renameOne(txn, req.Bucket, req.From, req.To, req.NoReplace, due)
		}
		return renameDir(txn, req, due)
	})
	if errors.Is(err, badger.ErrTxnTooBig) {
		return fmt.Errorf("%w: %q holds too many objects to rename in one step", metaapi.ErrInvalidArgument, req.From)
	}
	return err
}

func renameOne(txn *badger.Txn, bucket, from, to string, noReplace bool, due time.Time) error {
	src, err := loadObject(txn, bucket, from)
	if err != nil {
		return err
	}
	if src == nil {
		return fmt.Errorf("%w: %s", metaapi.ErrNoSuchKey, from)
	}
	dst, err := loadObject(txn, bucket, to)
	if err != nil {
		return err
	}
	if dst != nil && noReplace {
		return fmt.Errorf("%w: %s exists", metaapi.ErrPrecondition, to)
	}
	return moveRecord(txn, src, to, dst, due)
}

// moveRecord stores src under key to and deletes it from its old key,
// releasing the segments of dst, the record it replaces (if any).
func moveRecord(txn *badger.Txn, src *objectRecord, to string, dst *objectRecord, due time.Time) error {
	from := src.Key
	src.Key = to
	if err := setJSON(txn, objectKey(src.Bucket, to), src); err != nil {
		return err
	}
	if err := txn.Delete(objectKey(src.Bucket, from)); err != nil {
		return err
	}
	if dst != nil {
		return releaseSegments(txn, dst.SegIDs, due)
	}
	return nil
}

func renameDir(txn *badger.Txn, req metaapi.RenameRequest, due time.Time) error {
	// The destination may hold its own marker (an empty directory, which
	// POSIX rename replaces) and nothing else.
	it := txn.NewIterator(badger.IteratorOptions{Prefix: objectKey(req.Bucket, req.To)})
	for it.Rewind(); it.Valid(); it.Next() {
		if !bytes.Equal(it.Item().Key(), objectKey(req.Bucket, req.To)) || req.NoReplace {
			it.Close()
			return fmt.Errorf("%w: %s is not empty", metaapi.ErrPrecondition, req.To)
		}
	}
	it.Close()
	dstMarker, err := loadObject(txn, req.Bucket, req.To)
	if err != nil {
		return err
	}

	var srcs []*objectRecord
	it = txn.NewIterator(badger.IteratorOptions{Prefix: objectKey(req.Bucket, req.From), PrefetchValues: true})
	for it.Rewind(); it.Valid(); it.Next() {
		var rec objectRecord
		if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
			it.Close()
			return err
		}
		srcs = append(srcs, &rec)
	}
	it.Close()
	if len(srcs) == 0 {
		return fmt.Errorf("%w: %s", metaapi.ErrNoSuchKey, req.From)
	}
	for _, src := range srcs {
		to := req.To + strings.TrimPrefix(src.Key, req.From)
		var dst *objectRecord
		if to == req.To {
			dst, dstMarker = dstMarker, nil
		}
		if err := moveRecord(txn, src, to, dst, due); err != nil {
			return err
		}
	}
	if dstMarker != nil {
		// The source had no marker of its own; the empty target directory
		// is replaced all the same.
		if err := txn.Delete(objectKey(req.Bucket, req.To)); err != nil {
			return err
		}
		return releaseSegments(txn, dstMarker.SegIDs, due)
	}
	return nil
}

// Metadata group members: M<id> -> metaapi.MetaMember.
const pMember = 'M'

func (s *store) putMetaMember(m metaapi.MetaMember) error {
	if m.ID == "" {
		return fmt.Errorf("%w: metadata member without id", metaapi.ErrInvalidArgument)
	}
	return s.update(func(txn *badger.Txn) error {
		return setJSON(txn, append([]byte{pMember}, m.ID...), m)
	})
}

func (s *store) metaMembers() ([]metaapi.MetaMember, error) {
	ms := []metaapi.MetaMember{}
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pMember}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var m metaapi.MetaMember
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &m) }); err != nil {
				return err
			}
			ms = append(ms, m)
		}
		return nil
	})
	return ms, err
}

func (s *store) removeMetaMember(id string) error {
	return s.update(func(txn *badger.Txn) error {
		return txn.Delete(append([]byte{pMember}, id...))
	})
}
