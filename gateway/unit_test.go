package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/talusfs/talus/gateway/internal/s3err"
	"github.com/talusfs/talus/meta/metaapi"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		v       string
		size    int64
		off, n  int64
		ok      bool
		invalid bool
	}{
		{"bytes=0-9", 100, 0, 10, true, false},
		{"bytes=90-", 100, 90, 10, true, false},
		{"bytes=-10", 100, 90, 10, true, false},
		{"bytes=-1000", 100, 0, 100, true, false},
		{"bytes=50-1000", 100, 50, 50, true, false},
		{"bytes=100-", 100, 0, 0, false, true},
		{"bytes=-0", 100, 0, 0, false, true},
		{"bytes=0-", 0, 0, 0, false, true},
		{"bytes=-5", 0, 0, 0, false, true},
		{"bytes=5-2", 100, 0, 0, false, false},
		{"bytes=0-1,3-4", 100, 0, 0, false, false},
		{"items=0-1", 100, 0, 0, false, false},
		{"bytes=x-1", 100, 0, 0, false, false},
		{"bytes=1", 100, 0, 0, false, false},
	} {
		off, n, ok, err := parseRange(tc.v, tc.size)
		if tc.invalid != errors.Is(err, s3err.ErrInvalidRange) || ok != tc.ok || (ok && (off != tc.off || n != tc.n)) {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, %v", tc.v, tc.size, off, n, ok, err)
		}
	}
}

func TestConditionsPrecedence(t *testing.T) {
	mod := time.Date(2024, 5, 1, 12, 0, 0, 500, time.UTC)
	before, after := mod.Add(-time.Hour), mod.Add(time.Hour)
	for _, tc := range []struct {
		c    conditions
		read bool
		want *s3err.Error
	}{
		{conditions{}, true, nil},
		{conditions{ifMatch: `"abc"`}, true, nil},
		{conditions{ifMatch: `"x", "abc"`}, true, nil},
		{conditions{ifMatch: `W/"abc"`}, true, nil},
		{conditions{ifMatch: "*"}, true, nil},
		{conditions{ifMatch: `"x"`}, true, s3err.ErrPreconditionFailed},
		{conditions{ifUnmodified: before, hasUnmodified: true}, true, s3err.ErrPreconditionFailed},
		{conditions{ifUnmodified: mod.Truncate(time.Second), hasUnmodified: true}, true, nil},
		{conditions{ifMatch: `"abc"`, ifUnmodified: before, hasUnmodified: true}, true, nil},
		{conditions{ifNoneMatch: `"abc"`}, true, s3err.ErrNotModified},
		{conditions{ifNoneMatch: `"abc"`}, false, s3err.ErrPreconditionFailed},
		{conditions{ifNoneMatch: `"x"`, ifModified: after, hasModified: true}, true, nil},
		{conditions{ifModified: after, hasModified: true}, true, s3err.ErrNotModified},
		{conditions{ifModified: mod.Truncate(time.Second), hasModified: true}, true, s3err.ErrNotModified},
		{conditions{ifModified: before, hasModified: true}, true, nil},
		{conditions{ifMatch: `"x"`, ifNoneMatch: `"abc"`}, true, s3err.ErrPreconditionFailed},
	} {
		got := tc.c.evaluate("abc", mod, tc.read)
		if (got == nil) != (tc.want == nil) || (got != nil && !errors.Is(got, tc.want)) {
			t.Errorf("%+v read=%v: got %v, want %v", tc.c, tc.read, got, tc.want)
		}
	}
}

func TestURLEncode(t *testing.T) {
	for in, want := range map[string]string{
		"plain/key.txt": "plain/key.txt",
		"a b+c":         "a%20b%2Bc",
		"é&<>":          "%C3%A9%26%3C%3E",
		"~_-.":          "~_-.",
	} {
		got := s3URLEncode(in)
		if got != want {
			t.Errorf("s3URLEncode(%q) = %q, want %q", in, got, want)
		}
		if back, err := url.QueryUnescape(got); err != nil || back != in {
			t.Errorf("%q does not decode back to %q", got, in)
		}
	}
}

func TestObjectAttrs(t *testing.T) {
	h := http.Header{}
	h.Set("Content-Type", "text/plain")
	h.Set("X-Amz-Meta-Mode", "0644")
	h.Add("X-Amz-Meta-Multi", "a")
	h.Add("X-Amz-Meta-Multi", "b")
	h.Set("Content-Encoding", "aws-chunked,gzip")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Amz-Storage-Class", "STANDARD")
	h.Set("Authorization", "ignored")
	h.Set("X-Amz-Meta-Latin", "caf\xe9")
	ct, meta, err := objectAttrs(h)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"x-amz-meta-latin": "café", "x-amz-meta-mode": "0644", "x-amz-meta-multi": "a,b", "content-encoding": "gzip", "cache-control": "no-store",
		keyLatin1Meta: "x-amz-meta-latin"}
	if ct != "text/plain" || len(meta) != len(want) {
		t.Fatalf("got %q %v, want %v", ct, meta, want)
	}
	for k, v := range want {
		if meta[k] != v {
			t.Errorf("meta[%s] = %q, want %q", k, meta[k], v)
		}
	}
	h.Set("X-Amz-Storage-Class", "FROZEN")
	if _, _, err := objectAttrs(h); !errors.Is(err, s3err.ErrInvalidStorageClass) {
		t.Errorf("bad storage class: %v", err)
	}
	h.Set("X-Amz-Storage-Class", "STANDARD")
	for acl, want := range map[string]string{"public-read": "public-read", "private": "", "bucket-owner-full-control": "", "authenticated-read": "authenticated-read"} {
		h.Set("X-Amz-Acl", acl)
		if _, meta, err := objectAttrs(h); err != nil || meta[keyACL] != want {
			t.Errorf("ACL %s: stored %q, %v", acl, meta[keyACL], err)
		}
	}
	h.Set("X-Amz-Acl", "aws-exec-read")
	if _, _, err := objectAttrs(h); !errors.Is(err, s3err.ErrNotImplemented) {
		t.Errorf("aws-exec-read: %v", err)
	}
	h.Set("X-Amz-Acl", "public")
	if _, _, err := objectAttrs(h); !errors.Is(err, s3err.ErrInvalidArgument) {
		t.Errorf("unknown canned ACL: %v", err)
	}
	h.Del("X-Amz-Acl")
	h.Set("X-Amz-Grant-Read", "uri=http://acs.amazonaws.com/groups/global/AllUsers")
	if _, _, err := objectAttrs(h); !errors.Is(err, s3err.ErrNotImplemented) {
		t.Errorf("grant header: %v", err)
	}
}

func TestCannedFromPolicy(t *testing.T) {
	type grant = struct{ ID, URI, Email, Permission string }
	mk := func(owner string, gs ...grant) *aclInput {
		p := &aclInput{Owner: owner}
		for _, g := range gs {
			p.Grants = append(p.Grants, struct {
				ID         string `xml:"Grantee>ID"`
				URI        string `xml:"Grantee>URI"`
				Email      string `xml:"Grantee>EmailAddress"`
				Permission string
			}{g.ID, g.URI, g.Email, g.Permission})
		}
		return p
	}
	own := grant{ID: "me", Permission: "FULL_CONTROL"}
	for _, tc := range []struct {
		p    *aclInput
		want string
		err  *s3err.Error
	}{
		{mk("me", own), aclPrivate, nil},
		{mk("me", own, grant{URI: allUsersURI, Permission: "READ"}), aclPublicRead, nil},
		{mk("me", grant{URI: allUsersURI, Permission: "WRITE"}, own, grant{URI: allUsersURI, Permission: "READ"}), aclPublicReadWrite, nil},
		{mk("", own, grant{URI: authenticatedUsersURI, Permission: "READ"}), aclAuthenticatedRead, nil},
		{mk("me"), "", s3err.ErrNotImplemented},
		{mk("me", own, grant{URI: allUsersURI, Permission: "WRITE"}), "", s3err.ErrNotImplemented},
		{mk("me", own, grant{URI: allUsersURI, Permission: "READ_ACP"}), "", s3err.ErrNotImplemented},
		{mk("me", own, grant{ID: "you", Permission: "READ"}), "", s3err.ErrNotImplemented},
		{mk("me", own, grant{ID: "nobody", Permission: "READ"}), "", s3err.ErrInvalidArgument},
		{mk("me", own, grant{Email: "you@example.com", Permission: "READ"}), "", s3err.ErrUnresolvableGrantByEmail},
		{mk("me", own, grant{URI: allUsersURI, Permission: "EVERYTHING"}), "", s3err.ErrMalformedACL},
		{mk("me", own, grant{URI: allUsersURI, Permission: "READ"}, grant{URI: authenticatedUsersURI, Permission: "READ"}), "", s3err.ErrNotImplemented},
		{mk("you", own), "", s3err.ErrAccessDenied},
	} {
		got, err := cannedFromPolicy(tc.p, "me", func(id string) (bool, error) { return id == "you", nil })
		if got != tc.want || (tc.err == nil) != (err == nil) || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%+v: got %q, %v; want %q, %v", tc.p, got, err, tc.want, tc.err)
		}
	}
}

func TestPartRange(t *testing.T) {
	obj := &metaapi.Object{Size: 25, ETag: "abc-3", Meta: map[string]string{metaapi.MetaPartSizes: "10,10,5"}}
	for pn, want := range map[string][2]int64{"1": {0, 10}, "2": {10, 10}, "3": {20, 5}} {
		off, n, count, err := partRange(obj, pn)
		if err != nil || off != want[0] || n != want[1] || count != 3 {
			t.Errorf("part %s: %d+%d of %d, %v", pn, off, n, count, err)
		}
	}
	if _, _, _, err := partRange(obj, "4"); !errors.Is(err, s3err.ErrInvalidPart) {
		t.Errorf("part 4: %v", err)
	}
	if _, _, _, err := partRange(obj, "0"); !errors.Is(err, s3err.ErrInvalidArgument) {
		t.Errorf("part 0: %v", err)
	}
	single := &metaapi.Object{Size: 7, ETag: "abc"}
	if off, n, _, err := partRange(single, "1"); err != nil || off != 0 || n != 7 {
		t.Errorf("single part: %d+%d %v", off, n, err)
	}
	if _, _, _, err := partRange(single, "2"); !errors.Is(err, s3err.ErrInvalidPart) {
		t.Errorf("single part 2: %v", err)
	}
}

func TestQueryHas(t *testing.T) {
	for raw, want := range map[string]bool{
		"uploads":            true,
		"uploads=":           true,
		"a=1&uploads&b=2":    true,
		"uploadsX=1":         false,
		"x=uploads":          false,
		"prefix=a&uploads=1": true,
		"":                   false,
	} {
		if got := queryHas(raw, "uploads"); got != want {
			t.Errorf("queryHas(%q) = %v", raw, got)
		}
	}
}
