package s3auth

import (
	"bytes"
	"net/url"
	"slices"
	"strings"

	"github.com/talusfs/talus/gateway/internal/s3err"
)

// param is one decoded query parameter.
type param struct {
	key, value string
	eq         bool // the parameter had an '=', if an empty value
}

// params is a query string in the order the client sent it.
type params []param

// parseQuery decodes a raw query string, appending to dst. Unlike
// url.ParseQuery it keeps order and duplicates and never drops a
// parameter, because all of them are signed.
func parseQuery(raw string, dst params) (params, error) {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, v, eq := strings.Cut(kv, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, s3err.ErrInvalidURI
		}
		dst = append(dst, param{k, v, eq})
	}
	return dst, nil
}

func (q params) get(key string) (string, bool) {
	for _, p := range q {
		if p.key == key {
			return p.value, true
		}
	}
	return "", false
}

func (q params) has(key string) bool {
	_, ok := q.get(key)
	return ok
}

// appendCanonicalQuery appends the parameters URI-encoded, sorted by
// encoded name and then encoded value, joined by '&'; a parameter without a
// value still gets its '='. Presigned requests leave out X-Amz-Signature,
// which cannot sign itself.
func appendCanonicalQuery(dst []byte, q params, presigned bool) []byte {
	if len(q) == 0 {
		return dst
	}
	// Encode everything after dst's current end, sort spans of that, then
	// append the sorted spans. Sorting must use the encoded forms: encoding
	// does not preserve byte order ('[' sorts after 'Z', "%5B" before it).
	type span struct{ k0, k1, v1 int }
	var arr [16]span
	spans := arr[:0]
	base := len(dst)
	for _, p := range q {
		if presigned && p.key == "X-Amz-Signature" {
			continue
		}
		k0 := len(dst)
		dst = appendURIEncoded(dst, p.key, false)
		k1 := len(dst)
		dst = appendURIEncoded(dst, p.value, false)
		spans = append(spans, span{k0, k1, len(dst)})
	}
	slices.SortFunc(spans, func(a, b span) int {
		if c := bytes.Compare(dst[a.k0:a.k1], dst[b.k0:b.k1]); c != 0 {
			return c
		}
		return bytes.Compare(dst[a.k1:a.v1], dst[b.k1:b.v1])
	})
	// Append the sorted form after the encoded text, then move it down
	// over it.
	end := len(dst)
	for i, s := range spans {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, dst[s.k0:s.k1]...)
		dst = append(dst, '=')
		dst = append(dst, dst[s.k1:s.v1]...)
	}
	n := copy(dst[base:], dst[end:])
	return dst[:base+n]
}
