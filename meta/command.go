package meta

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/talusfs/talus/meta/metaapi"
)

// op names a kind of command. The names are part of the log format: never
// rename one, only add.
type op string

const (
	opCreateBucket   op = "createBucket"
	opDeleteBucket   op = "deleteBucket"
	opSetBucketACL   op = "setBucketACL"
	opCommit         op = "commit"
	opDeleteObject   op = "deleteObject"
	opRename         op = "rename"
	opCopy           op = "copy"
	opCreateUpload   op = "createUpload"
	opCommitPart     op = "commitPart"
	opCompleteUpload op = "completeUpload"
	opAbortUpload    op = "abortUpload"
	opPutUser        op = "putUser"
	opDeleteUser     op = "deleteUser"
	opNode           op = "node"
	opSetNodeState   op = "setNodeState"
	opReportBad      op = "reportBad"
	opGCDone         op = "gcDone"
	opMetaMember     op = "metaMember"
	opRemoveMember   op = "removeMetaMember"
)

// command is one change to the metadata: the unit of the Raft log. Every
// input a store method needs travels in the command, the proposer's clock
// included, so that every replica applying the same log reaches the same
// state.
type command struct {
	Op  op        `json:"op"`
	Now time.Time `json:"now"`
	// Due is when shards this command releases may be deleted.
	Due  time.Time       `json:"due"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Argument records of the commands whose inputs are not one API type.
type (
	bucketACLArgs struct {
		Bucket string `json:"bucket"`
		ACL    string `json:"acl"`
	}
	objectArgs struct {
		Bucket string                `json:"bucket"`
		Key    string                `json:"key"`
		Cond   metaapi.Preconditions `json:"cond"`
	}
	uploadArgs struct {
		Bucket string `json:"bucket"`
		Key    string `json:"key"`
		ID     string `json:"id"`
	}
	nodeStateArgs struct {
		ID    string            `json:"id"`
		State metaapi.NodeState `json:"state"`
	}
	gcDoneArgs struct {
		Node  string `json:"node"`
		Shard string `json:"shard"`
		Key   []byte `json:"key"`
	}
)

// change is what an applied command did to a bucket's namespace, for the
// change feed.
type change struct {
	bucket   string
	keys     []string
	prefixes []string
}

// apply applies one command to the store and reports the namespace change it
// made. It must be deterministic: the same command on the same state gives
// the same result on every replica.
func (s *store) apply(c command) (any, *change, error) {
	switch c.Op {
	case opCreateBucket:
		var b metaapi.Bucket
		if err := decodeArgs(c, &b); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.createBucket(b)
	case opDeleteBucket:
		var name string
		if err := decodeArgs(c, &name); err != nil {
			return nil, nil, err
		}
		return nil, &change{bucket: name, prefixes: []string{""}}, s.deleteBucket(name, c.Due)
	case opSetBucketACL:
		var a bucketACLArgs
		if err := decodeArgs(c, &a); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.setBucketACL(a.Bucket, a.ACL)
	case opCommit:
		var req metaapi.CommitRequest
		if err := decodeArgs(c, &req); err != nil {
			return nil, nil, err
		}
		o, err := s.commit(req, c.Due)
		return o, &change{bucket: req.Object.Bucket, keys: []string{req.Object.Key}}, err
	case opDeleteObject:
		var a objectArgs
		if err := decodeArgs(c, &a); err != nil {
			return nil, nil, err
		}
		return nil, &change{bucket: a.Bucket, keys: []string{a.Key}}, s.deleteObject(a.Bucket, a.Key, a.Cond, c.Due)
	case opRename:
		var req metaapi.RenameRequest
		if err := decodeArgs(c, &req); err != nil {
			return nil, nil, err
		}
		ch := &change{bucket: req.Bucket, keys: []string{req.From, req.To}}
		if req.Dir {
			ch = &change{bucket: req.Bucket, prefixes: []string{req.From, req.To}}
		}
		return nil, ch, s.rename(req, c.Now, c.Due)
	case opCopy:
		var req metaapi.CopyRequest
		if err := decodeArgs(c, &req); err != nil {
			return nil, nil, err
		}
		o, err := s.copyObject(req, c.Now, c.Due)
		return o, &change{bucket: req.DstBucket, keys: []string{req.DstKey}}, err
	case opCreateUpload:
		var u metaapi.Upload
		if err := decodeArgs(c, &u); err != nil {
			return nil, nil, err
		}
		return u, nil, s.createUpload(u)
	case opCommitPart:
		var req metaapi.PartCommitRequest
		if err := decodeArgs(c, &req); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.commitPart(req, c.Due)
	case opCompleteUpload:
		var req metaapi.CompleteRequest
		if err := decodeArgs(c, &req); err != nil {
			return nil, nil, err
		}
		o, err := s.completeUpload(req, c.Now, c.Due)
		return o, &change{bucket: req.Bucket, keys: []string{req.Key}}, err
	case opAbortUpload:
		var a uploadArgs
		if err := decodeArgs(c, &a); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.abortUpload(a.Bucket, a.Key, a.ID, c.Due)
	case opPutUser:
		var u metaapi.User
		if err := decodeArgs(c, &u); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.putUser(u)
	case opDeleteUser:
		var ak string
		if err := decodeArgs(c, &ak); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.deleteUser(ak)
	case opNode:
		var hb metaapi.Heartbeat
		if err := decodeArgs(c, &hb); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.heartbeat(hb, c.Now)
	case opSetNodeState:
		var a nodeStateArgs
		if err := decodeArgs(c, &a); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.setNodeState(a.ID, a.State)
	case opReportBad:
		var bad []metaapi.BadShard
		if err := decodeArgs(c, &bad); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.reportBad(bad)
	case opGCDone:
		var es []gcDoneArgs
		if err := decodeArgs(c, &es); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.gcDone(es)
	case opMetaMember:
		var m metaapi.MetaMember
		if err := decodeArgs(c, &m); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.putMetaMember(m)
	case opRemoveMember:
		var id string
		if err := decodeArgs(c, &id); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.removeMetaMember(id)
	}
	if v, ok, err := s.applyRepair(c); ok {
		return v, nil, err
	}
	return nil, nil, fmt.Errorf("unknown metadata command %q", c.Op)
}

func decodeArgs(c command, v any) error {
	if err := json.Unmarshal(c.Args, v); err != nil {
		return fmt.Errorf("decode %s command: %w", c.Op, err)
	}
	return nil
}
