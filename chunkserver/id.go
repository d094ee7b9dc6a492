package chunkserver

import "strconv"

// ValidShardID reports whether id is a well-formed shard id: a segment id
// of 32 lowercase hex digits, a dot, and the shard index 0..255 in decimal
// without leading zeros. Because the id becomes a file name, only this
// canonical form is accepted; it cannot contain a path separator or "..".
func ValidShardID(id string) bool {
	if len(id) < 34 || len(id) > 36 || id[32] != '.' {
		return false
	}
	for i := range 32 {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	idx := id[33:]
	if len(idx) > 1 && idx[0] == '0' {
		return false
	}
	n := 0
	for i := range len(idx) {
		c := idx[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 255
}

// ShardID returns the id of shard idx of segment segmentID. It does not
// validate its arguments; ValidShardID does.
func ShardID(segmentID string, idx int) string {
	return segmentID + "." + strconv.Itoa(idx)
}
