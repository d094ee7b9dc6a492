package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/talusfs/talus/gateway/internal/s3auth"
	"github.com/talusfs/talus/gateway/internal/s3err"
	"github.com/talusfs/talus/meta/metaapi"
)

// identity is who signed a request and what that lets them use.
type identity struct {
	accessKey string
	root      bool
	buckets   []string // buckets usable besides those owned
	// anonymous marks requests without authentication, which only ACLs
	// let in anywhere.
	anonymous bool
}

// mayUse reports whether the identity may use a bucket with the given owner
// as its owner would.
func (id *identity) mayUse(bucket, owner string) bool {
	return !id.anonymous && (id.root || owner == id.accessKey || slices.Contains(id.buckets, bucket))
}

// How long user and bucket records are trusted. Short, because gateways
// share nothing: a key deleted through another gateway must stop working
// here soon after, and an unknown key must not cost a metadata lookup on
// every request of a client hammering with it.
const (
	userTTL     = 10 * time.Second
	negativeTTL = 2 * time.Second
	ownerTTL    = 5 * time.Second
	cacheMax    = 4096
)

// userCache resolves access keys: the root key from the configuration,
// others from the metadata service. It is the Verifier's CredentialStore.
type userCache struct {
	meta       *metaapi.Client
	root       *identity
	rootSecret string

	mu sync.Mutex
	m  map[string]userEntry
}

type userEntry struct {
	id      *identity
	secret  string
	err     error
	expires time.Time
}

func newUserCache(meta *metaapi.Client, rootKey, rootSecret string) *userCache {
	return &userCache{
		meta:       meta,
		root:       &identity{accessKey: rootKey, root: true},
		rootSecret: rootSecret,
		m:          make(map[string]userEntry),
	}
}

// Secret implements s3auth.CredentialStore.
func (c *userCache) Secret(ctx context.Context, accessKey string) (string, error) {
	e, err := c.lookup(ctx, accessKey)
	if err != nil {
		return "", err
	}
	return e.secret, nil
}

// identity returns who accessKey is; the key has been authenticated.
func (c *userCache) identity(ctx context.Context, accessKey string) (*identity, error) {
	e, err := c.lookup(ctx, accessKey)
	if errors.Is(err, s3auth.ErrUnknownKey) {
		// Deleted between signature check and now.
		return nil, s3err.ErrInvalidAccessKeyID
	}
	if err != nil {
		return nil, err
	}
	return e.id, nil
}

func (c *userCache) lookup(ctx context.Context, accessKey string) (userEntry, error) {
	if accessKey == c.root.accessKey {
		return userEntry{id: c.root, secret: c.rootSecret}, nil
	}
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[accessKey]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e, e.err
	}

	u, err := c.meta.User(ctx, accessKey)
	switch {
	case errors.Is(err, metaapi.ErrNoSuchUser):
		e = userEntry{err: fmt.Errorf("access key %q: %w", accessKey, s3auth.ErrUnknownKey), expires: now.Add(negativeTTL)}
	case err != nil:
		// Not cached: the metadata service may be back on the next request.
		return userEntry{}, fmt.Errorf("look up access key: %w", err)
	case u.SecretKey == "":
		e = userEntry{err: fmt.Errorf("access key %q has no secret: %w", accessKey, s3auth.ErrUnknownKey), expires: now.Add(negativeTTL)}
	default:
		e = userEntry{
			id:      &identity{accessKey: u.AccessKey, root: u.Root, buckets: u.Buckets},
			secret:  u.SecretKey,
			expires: now.Add(userTTL),
		}
	}
	c.mu.Lock()
	if len(c.m) >= cacheMax {
		evictExpired(c.m, now, func(e userEntry) time.Time { return e.expires })
	}
	c.m[accessKey] = e
	c.mu.Unlock()
	return e, e.err
}

// evictExpired drops expired entries, or all of them if none has expired,
// so that a flood of distinct keys cannot grow a cache without bound.
func evictExpired[V any](m map[string]V, now time.Time, expires func(V) time.Time) {
	for k, v := range m {
		if !now.Before(expires(v)) {
			delete(m, k)
		}
	}
	if len(m) >= cacheMax {
		clear(m)
	}
}

// bucketCache remembers bucket owners and ACLs for access checks.
type bucketCache struct {
	meta *metaapi.Client

	mu sync.Mutex
	m  map[string]bucketEntry
}

type bucketEntry struct {
	bucketACL
	expires time.Time
}

func newBucketCache(meta *metaapi.Client) *bucketCache {
	return &bucketCache{meta: meta, m: make(map[string]bucketEntry)}
}

// get returns a bucket's owner and ACL, or ErrNoSuchBucket.
func (c *bucketCache) get(ctx context.Context, bucket string) (bucketACL, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[bucket]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.bucketACL, nil
	}
	b, err := c.meta.Bucket(ctx, bucket)
	if err != nil {
		return bucketACL{}, fmt.Errorf("look up bucket %s: %w", bucket, err)
	}
	c.put(b, now)
	return bucketACL{owner: b.Owner, acl: b.ACL}, nil
}

// put caches a bucket record just read.
func (c *bucketCache) put(b metaapi.Bucket, now time.Time) {
	c.mu.Lock()
	if len(c.m) >= cacheMax {
		evictExpired(c.m, now, func(e bucketEntry) time.Time { return e.expires })
	}
	c.m[b.Name] = bucketEntry{bucketACL{owner: b.Owner, acl: b.ACL}, now.Add(ownerTTL)}
	c.mu.Unlock()
}

// forget drops what is known about a bucket that was created, deleted or
// given a new ACL.
func (c *bucketCache) forget(bucket string) {
	c.mu.Lock()
	delete(c.m, bucket)
	c.mu.Unlock()
}

// access is what q's caller may do in a bucket.
type access struct {
	full  bool // the owner's rights: root, owner, or given the bucket
	read  bool // may list
	write bool // may create and delete objects
}

// access finds what q's caller may do in bucket. Root and users given the
// bucket skip the lookup: a missing bucket then surfaces from the
// operation itself.
//
// A request may also name the owner it expects (x-amz-expected-bucket-owner),
// guarding against writing into a bucket that was deleted and recreated by
// someone else.
func (g *Gateway) access(q *request, bucket string) (access, error) {
	expected := ""
	if bucket == q.bucket {
		expected = q.r.Header.Get("X-Amz-Expected-Bucket-Owner")
	}
	if expected == "" && !q.user.anonymous && (q.user.root || slices.Contains(q.user.buckets, bucket)) {
		return access{full: true, read: true, write: true}, nil
	}
	b, err := g.buckets.get(q.ctx(), bucket)
	if err != nil {
		return access{}, err
	}
	if expected != "" && expected != g.ownerID(b.owner) {
		return access{}, s3err.ErrAccessDenied
	}
	if q.user.mayUse(bucket, b.owner) {
		return access{full: true, read: true, write: true}, nil
	}
	return access{read: grants(b.acl, permRead, q.user), write: grants(b.acl, permWrite, q.user)}, nil
}

// authorize checks that q's caller has perm in bucket.
func (g *Gateway) authorize(q *request, bucket string, perm permission) error {
	a, err := g.access(q, bucket)
	if err != nil {
		return err
	}
	if !a.allows(perm) {
		return s3err.ErrAccessDenied
	}
	return nil
}

func (a access) allows(perm permission) bool {
	switch perm {
	case permRead:
		return a.read
	case permWrite:
		return a.write
	}
	return a.full
}

// mayRead decides whether q's caller may read an object of a bucket it has
// access a to. Unless the caller has the owner's rights, the object's own
// ACL decides. lookupErr is the error looking the object up gave: a
// missing key is NoSuchKey only to callers who may list the bucket, and
// AccessDenied to the others, as in S3.
func (a access) mayRead(q *request, o *metaapi.Object, lookupErr error) error {
	if a.full {
		return lookupErr
	}
	if lookupErr != nil {
		if errors.Is(lookupErr, metaapi.ErrNoSuchKey) && !a.read {
			return s3err.ErrAccessDenied
		}
		return lookupErr
	}
	if !grants(objectACL(o), permRead, q.user) {
		return s3err.ErrAccessDenied
	}
	return nil
}
