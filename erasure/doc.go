// Package erasure stripes segments of object data over K data and M parity
// shards with Reed-Solomon coding (github.com/klauspost/reedsolomon), and
// reads them back, reconstructing on the fly what a missing, failing or
// slow shard cannot deliver.
//
// # Stripe layout
//
// The caller cuts an object into segments (up to 64 MiB, say); this package
// knows only segments. A segment is coded stripe by stripe under a Layout
// {K, M, BlockSize}, written B below:
//
//	segment data:   | stripe 0 (K*B bytes)  | stripe 1 (K*B bytes)  | ... | last (rem bytes) |
//	stripe s:       | block 0 | block 1 | ... | block K-1 |   data block i = stripe bytes [i*B, (i+1)*B)
//	                  + parity blocks K..K+M-1, each B bytes, computed from the K data blocks
//	shard i:        | block i of stripe 0 | block i of stripe 1 | ... | block i of last |
//
// Shard i of a segment is the concatenation of block i of every stripe;
// shards 0..K-1 hold the data itself, shards K..K+M-1 the parity. The final
// stripe, if partial with rem bytes, uses blocks of c = ceil(rem/K) bytes
// (its data zero-padded to K*c), so all K+M shards of a segment have the same
// length, Layout.ShardSize(segSize) = (segSize / (K*B))*B + ceil(rem/K).
//
// Because the data blocks of a stripe are consecutive ranges of the segment,
// data byte x of the segment is found without any decoding: in stripe
// s = x/(K*B), block (x mod K*B)/b at offset (x mod K*B) mod b, where b is
// that stripe's block size, and that block lies at offset s*B of its shard.
// A byte range therefore maps to one contiguous range of each data shard
// it touches, and a healthy range read is K or fewer sequential reads with
// no decoding. Reed-Solomon works column by column (byte j of the parity
// blocks depends only on byte j of the data blocks), so a degraded read
// reconstructs just the columns the range needs, from any K shards.
//
// # Writing, reading, repairing
//
// Writer encodes one stripe at a time into pooled buffers and writes block i
// to shard writer i from one goroutine per shard, with a few stripes in
// flight, so one slow shard does not stall the rest. Reader reads a byte
// range, opening only the data shards the range needs and falling back to
// parity when one fails; the chunk servers check per-block checksums, so a
// corrupt block reaches this package as a read error. Rebuild regenerates
// lost shards from K survivors for background repair.
//
// BlockSize is fixed when a segment is written and must be recorded with it.
// With DefaultBlockSize (64 KiB) a 4+2 stripe holds 256 KiB of data.
package erasure
