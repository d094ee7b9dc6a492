package chunkserver

import "errors"

// Errors returned by Server methods and by Client, usable with errors.Is.
// A Client maps a 401 answer to clusterauth.ErrUnauthorized.
var (
	ErrNotFound            = errors.New("shard not found")
	ErrCorrupt             = errors.New("shard corrupt")
	ErrInsufficientStorage = errors.New("insufficient storage")
	ErrBadRequest          = errors.New("bad request")
)

// HTTP headers of the chunk server API.
const (
	// HeaderShardSize carries the shard's data length: on PUT, the exact
	// body length, or -1 for a body of unknown length (see
	// Server.Handler); on GET and HEAD, the whole shard's length.
	HeaderShardSize = "X-Talus-Shard-Size"
	// HeaderShardMax bounds a shard of unknown size on PUT; the server
	// reserves disk space for this much instead of its MaxShardSize.
	HeaderShardMax = "X-Talus-Shard-Max"
	// HeaderCRC32C is the hex CRC32C (Castagnoli) of a PUT body, sent as a
	// trailer (or, when known upfront, as a header).
	HeaderCRC32C = "X-Talus-Crc32c"
	// HeaderError classifies a 500 answer; "corrupt" means the shard
	// failed its checksums.
	HeaderError = "X-Talus-Error"
)
