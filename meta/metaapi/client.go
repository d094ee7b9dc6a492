package metaapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/talusfs/talus/internal/clusterauth"
)

// Client calls the metadata service over HTTP. It is safe for concurrent use.
type Client struct {
	addrs  []string
	secret []byte
	hc     *http.Client
	// cur is the index into addrs of the last address that answered, so a
	// client sticks to a working metadata node.
	cur atomic.Int32

	// RetryFor bounds how long a call retries while no metadata leader can
	// be reached (0: DefaultRetryFor). Set it before the first call.
	RetryFor time.Duration
}

// NewClient returns a client of the metadata nodes at addrs (host:port). A nil
// hc gets a transport tuned for many small requests to few hosts.
func NewClient(addrs []string, secret []byte, hc *http.Client) (*Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("metadata client: no metadata address given")
	}
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}}
	}
	return &Client{addrs: addrs, secret: secret, hc: hc}, nil
}

// CreateBucket creates a bucket; ErrBucketExists if it is there already.
func (c *Client) CreateBucket(ctx context.Context, b Bucket) error {
	return c.call(ctx, http.MethodPost, "/v1/buckets", nil, b, nil)
}

// DeleteBucket removes an empty bucket.
func (c *Client) DeleteBucket(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "/v1/bucket", url.Values{"bucket": {name}}, nil, nil)
}

// Bucket returns one bucket's record.
func (c *Client) Bucket(ctx context.Context, name string) (Bucket, error) {
	var b Bucket
	err := c.call(ctx, http.MethodGet, "/v1/bucket", url.Values{"bucket": {name}}, nil, &b)
	return b, err
}

// SetBucketACL replaces a bucket's ACL (see Bucket.ACL); ErrNoSuchBucket if
// there is no such bucket.
func (c *Client) SetBucketACL(ctx context.Context, name, acl string) error {
	return c.call(ctx, http.MethodPost, "/v1/bucket/acl", url.Values{"bucket": {name}, "acl": {acl}}, nil, nil)
}

// Buckets lists every bucket in name order.
func (c *Client) Buckets(ctx context.Context) ([]Bucket, error) {
	var bs []Bucket
	err := c.call(ctx, http.MethodGet, "/v1/buckets", nil, nil, &bs)
	return bs, err
}

// Commit makes an object version visible and returns the stored record.
func (c *Client) Commit(ctx context.Context, req CommitRequest) (Object, error) {
	var o Object
	err := c.call(ctx, http.MethodPost, "/v1/objects", nil, req, &o)
	return o, err
}

// Object looks up an object with its segments and shard locations.
func (c *Client) Object(ctx context.Context, bucket, key string) (Object, error) {
	var o Object
	err := c.call(ctx, http.MethodGet, "/v1/object", url.Values{"bucket": {bucket}, "key": {key}}, nil, &o)
	return o, err
}

// DeleteObject removes an object; deleting a missing key is not an error,
// as in S3. The object's shards go to garbage collection.
func (c *Client) DeleteObject(ctx context.Context, bucket, key string, cond Preconditions) error {
	q := url.Values{"bucket": {bucket}, "key": {key}}
	if cond.IfMatch != "" {
		q.Set("ifMatch", cond.IfMatch)
	}
	return c.call(ctx, http.MethodDelete, "/v1/object", q, nil, nil)
}

// List returns one page of a bucket listing.
func (c *Client) List(ctx context.Context, req ListRequest) (ListResult, error) {
	q := url.Values{"bucket": {req.Bucket}}
	if req.Prefix != "" {
		q.Set("prefix", req.Prefix)
	}
	if req.Delimiter != "" {
		q.Set("delimiter", req.Delimiter)
	}
	if req.After != "" {
		q.Set("after", req.After)
	}
	if req.Max > 0 {
		q.Set("max", strconv.Itoa(req.Max))
	}
	var r ListResult
	err := c.call(ctx, http.MethodGet, "/v1/list", q, nil, &r)
	return r, err
}

// Ring returns the current placement ring.
func (c *Client) Ring(ctx context.Context) (Ring, error) {
	var r Ring
	err := c.call(ctx, http.MethodGet, "/v1/ring", nil, nil, &r)
	return r, err
}

// Nodes lists the chunk-server registry.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var ns []Node
	err := c.call(ctx, http.MethodGet, "/v1/nodes", nil, nil, &ns)
	return ns, err
}

// Heartbeat registers a chunk server or refreshes its registration.
func (c *Client) Heartbeat(ctx context.Context, hb Heartbeat) error {
	return c.call(ctx, http.MethodPost, "/v1/nodes/heartbeat", nil, hb, nil)
}

// ReportBadShards tells the metadata service about shards that failed a read.
func (c *Client) ReportBadShards(ctx context.Context, bad []BadShard) error {
	return c.call(ctx, http.MethodPost, "/v1/badshards", nil, bad, nil)
}

// BadShards lists reported bad shards that are not yet repaired.
func (c *Client) BadShards(ctx context.Context) ([]BadShard, error) {
	var bs []BadShard
	err := c.call(ctx, http.MethodGet, "/v1/badshards", nil, nil, &bs)
	return bs, err
}

// GCStatus reports how many shard deletions are queued.
func (c *Client) GCStatus(ctx context.Context) (GCStatus, error) {
	var s GCStatus
	err := c.call(ctx, http.MethodGet, "/v1/gc", nil, nil, &s)
	return s, err
}

// GCStatus is the garbage collector's queue.
type GCStatus struct {
	Pending int `json:"pending"`
}

// DefaultRetryFor is how long a call keeps trying while no metadata leader can
// be reached: long enough to ride out a leader election (a few seconds),
// short enough that a cluster without quorum fails calls promptly.
const DefaultRetryFor = 10 * time.Second

// call sends one request. When a metadata node cannot be reached, or answers
// that there is no leader, it tries the next address, and after a round of
// all of them waits and goes round again, until RetryFor has passed. Other
// answers, errors included, are final.
//
// Retrying a request whose answer was lost is safe: every metadata change is
// idempotent when repeated with the same inputs, except that a conditional
// write may then see its own first attempt and fail its condition.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("metadata %s %s: encode request: %w", method, path, err)
		}
	}
	retryFor := c.RetryFor
	if retryFor == 0 {
		retryFor = DefaultRetryFor
	}
	deadline := time.Now().Add(retryFor)
	wait := 50 * time.Millisecond
	idx := int(c.cur.Load())
	var lastErr error
	for round := 0; ; round++ {
		for range c.addrs {
			err := c.attempt(ctx, c.addrs[idx], method, path, q, body, out)
			if !retryable(err) || ctx.Err() != nil {
				c.cur.Store(int32(idx))
				return err
			}
			lastErr = err
			idx = (idx + 1) % len(c.addrs)
		}
		if time.Now().Add(wait).After(deadline) {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("metadata %s %s: %w (last error: %v)", method, path, ctx.Err(), lastErr)
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
	if errors.Is(lastErr, ErrNoQuorum) {
		return fmt.Errorf("metadata %s %s: retried for %s: %w", method, path, retryFor, lastErr)
	}
	return fmt.Errorf("metadata %s %s: retried for %s: %w: %v", method, path, retryFor, ErrUnavailable, lastErr)
}

// attemptTimeout bounds how long one attempt waits for an answer to begin
// before the call tries the next metadata node. A node that died without
// closing its connections (a crashed host, a cut network) would otherwise
// hold the call until TCP gives up. Long enough for a commit on a loaded
// leader; an attempt cut short is retried, which is safe (see call).
const attemptTimeout = 2500 * time.Millisecond

// attempt runs one try at addr, giving up on it when no answer has begun
// within attemptTimeout (long polls get the poll time on top).
func (c *Client) attempt(ctx context.Context, addr, method, path string, q url.Values, body []byte, out any) error {
	limit := attemptTimeout
	if path == "/v1/changes" {
		limit += 15 * time.Second
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var answered atomic.Bool
	t := time.AfterFunc(limit, func() {
		if !answered.Load() {
			cancel()
		}
	})
	defer t.Stop()
	err := c.do(actx, addr, method, path, q, body, out, func() { answered.Store(true) })
	if err != nil && ctx.Err() == nil && actx.Err() != nil {
		return fmt.Errorf("%w: metadata node %s did not answer within %s", ErrUnavailable, addr, limit)
	}
	return err
}

// retryable reports whether another metadata node, or the same one a moment
// later, may answer differently: the node could not be reached, or it knows
// no leader to serve the request.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var netErr *net.OpError
	return errors.As(err, &netErr) || errors.Is(err, ErrNoQuorum) || errors.Is(err, ErrUnavailable) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

func (c *Client) do(ctx context.Context, addr, method, path string, q url.Values, body []byte, out any, answered func()) error {
	u := "http://" + addr + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("metadata %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	clusterauth.Sign(req, c.secret)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("metadata %s %s at %s: %w", method, path, addr, err)
	}
	answered()
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(data, &eb) != nil || eb.Message == "" {
			eb.Message = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data))
		}
		if sentinel := errorFor(eb.Code); sentinel != nil {
			return &remoteError{sentinel: sentinel, msg: eb.Message}
		}
		return fmt.Errorf("metadata %s %s at %s: %s", method, path, addr, eb.Message)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("metadata %s %s at %s: decode answer: %w", method, path, addr, err)
	}
	return nil
}

// remoteError carries the server's message while matching its sentinel.
type remoteError struct {
	sentinel error
	msg      string
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// CreateUpload starts a multipart upload; the server assigns its ID.
func (c *Client) CreateUpload(ctx context.Context, u Upload) (Upload, error) {
	var out Upload
	err := c.call(ctx, http.MethodPost, "/v1/uploads", nil, u, &out)
	return out, err
}

// Upload returns a multipart upload in progress.
func (c *Client) Upload(ctx context.Context, bucket, key, id string) (Upload, error) {
	var out Upload
	err := c.call(ctx, http.MethodGet, "/v1/upload", url.Values{"bucket": {bucket}, "key": {key}, "uploadId": {id}}, nil, &out)
	return out, err
}

// CommitPart records an uploaded part whose segments are durable.
func (c *Client) CommitPart(ctx context.Context, req PartCommitRequest) error {
	return c.call(ctx, http.MethodPost, "/v1/parts", nil, req, nil)
}

// CompleteUpload assembles the listed parts into the object.
func (c *Client) CompleteUpload(ctx context.Context, req CompleteRequest) (Object, error) {
	var o Object
	err := c.call(ctx, http.MethodPost, "/v1/uploads/complete", nil, req, &o)
	return o, err
}

// AbortUpload discards an upload and its parts.
func (c *Client) AbortUpload(ctx context.Context, bucket, key, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/upload", url.Values{"bucket": {bucket}, "key": {key}, "uploadId": {id}}, nil, nil)
}

// Parts lists an upload's parts with numbers above after.
func (c *Client) Parts(ctx context.Context, bucket, key, id string, after, max int) (PartList, error) {
	var out PartList
	q := url.Values{"bucket": {bucket}, "key": {key}, "uploadId": {id}, "after": {strconv.Itoa(after)}, "max": {strconv.Itoa(max)}}
	err := c.call(ctx, http.MethodGet, "/v1/parts", q, nil, &out)
	return out, err
}

// Uploads lists multipart uploads in progress.
func (c *Client) Uploads(ctx context.Context, req UploadListRequest) (UploadList, error) {
	var out UploadList
	err := c.call(ctx, http.MethodPost, "/v1/uploads/list", nil, req, &out)
	return out, err
}

// Copy creates an object sharing another's data.
func (c *Client) Copy(ctx context.Context, req CopyRequest) (Object, error) {
	var o Object
	err := c.call(ctx, http.MethodPost, "/v1/copy", nil, req, &o)
	return o, err
}

// PutUser creates an access key (ErrUserExists if taken).
func (c *Client) PutUser(ctx context.Context, u User) error {
	return c.call(ctx, http.MethodPost, "/v1/users", nil, u, nil)
}

// User returns an access key's record, secret included.
func (c *Client) User(ctx context.Context, accessKey string) (User, error) {
	var u User
	err := c.call(ctx, http.MethodGet, "/v1/user", url.Values{"accessKey": {accessKey}}, nil, &u)
	return u, err
}

// Users lists access keys, without secrets.
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var us []User
	err := c.call(ctx, http.MethodGet, "/v1/users", nil, nil, &us)
	return us, err
}

// DeleteUser removes an access key.
func (c *Client) DeleteUser(ctx context.Context, accessKey string) error {
	return c.call(ctx, http.MethodDelete, "/v1/user", url.Values{"accessKey": {accessKey}}, nil, nil)
}

// Rename renames an object or a whole prefix atomically (see RenameRequest).
func (c *Client) Rename(ctx context.Context, req RenameRequest) error {
	return c.call(ctx, http.MethodPost, "/v1/rename", nil, req, nil)
}

// Changes long-polls the change feed of a bucket: it answers at once when
// something changed after since, otherwise after about ten seconds with
// nothing. since 0 asks only for the current position.
func (c *Client) Changes(ctx context.Context, bucket string, since uint64) (Changes, error) {
	var ch Changes
	err := c.call(ctx, http.MethodGet, "/v1/changes", url.Values{"bucket": {bucket}, "since": {strconv.FormatUint(since, 10)}}, nil, &ch)
	return ch, err
}

// MetaStatus returns the Raft group's state as the answering node sees it;
// ask the leader (any node forwards) for replication lag.
func (c *Client) MetaStatus(ctx context.Context) (MetaStatus, error) {
	var st MetaStatus
	err := c.call(ctx, http.MethodGet, "/v1/meta/status", nil, nil, &st)
	return st, err
}

// MetaMembers lists the metadata nodes with their addresses.
func (c *Client) MetaMembers(ctx context.Context) ([]MetaMember, error) {
	var ms []MetaMember
	err := c.call(ctx, http.MethodGet, "/v1/meta/members", nil, nil, &ms)
	return ms, err
}

// AddMeta adds a metadata node to the Raft group as a voter.
func (c *Client) AddMeta(ctx context.Context, m MetaMember) error {
	return c.call(ctx, http.MethodPost, "/v1/meta/members", nil, m, nil)
}

// RemoveMeta removes a metadata node from the Raft group.
func (c *Client) RemoveMeta(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/meta/members", url.Values{"id": {id}}, nil, nil)
}
