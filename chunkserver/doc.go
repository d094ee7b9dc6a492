// Package chunkserver stores erasure-coded shards on a node's local disks
// and serves them over HTTP; Client is the other end, used by the native
// client, garbage collection and repair.
//
// # Shards and disks
//
// A shard id is "<segment id>.<index>" (see ValidShardID). Each shard is
// one file, <disk>/shards/<first two hex digits>/<id>, on one of the
// configured disks; the server picks the healthy disk with the most free
// space for each new shard. Reads and deletes find a shard by trying to
// open it on each disk in turn: a miss costs one open(2) that the kernel
// answers from its dentry cache (about 4µs here), while an in-memory
// index would cost on the order of 100 bytes of RAM per shard and a
// rebuild at every start.
//
// # Durability
//
// A shard is written to <disk>/tmp (from 256 KiB on with O_DIRECT where
// the filesystem allows it: with the flush that follows anyway, that costs
// a fraction of the CPU of going through the page cache), renamed into place and then
// flushed, data and rename together, before the PUT is answered, so an
// acknowledged shard survives power loss. The flush is a syncfs(2) call
// shared by every write in flight on the disk (groupSync): one device
// flush per batch of concurrent writes rather than two per shard. A crash
// before the rename leaves only a temp file, which New deletes; a crash
// between the rename and the flush may leave an unacknowledged shard with
// some data lost, which its checksums make read as corrupt. Every read
// verifies a CRC32C per 64 KiB block before sending any byte of that
// block, so bit rot is never served; VerifyShard reads a whole shard for
// scrubbing.
//
// # On-disk format (version 1)
//
// A disk directory holds:
//
//	LOCK            flock'ed while a server uses the disk
//	disk-id         the disk's stable id (random hex)
//	node-id         the node's id (the same on every disk of a node)
//	tmp/            shards being written; emptied on start
//	shards/xx/<id>  committed shards, xx = the first two hex digits of id
//
// A shard file is
//
//	[data: D bytes][checksum table: 4*ceil(D/B) bytes][footer: 32 bytes]
//
// The data comes first and contiguously, so shard offset O is file offset
// O and a range read is one pread. The table holds the CRC32C
// (Castagnoli) of each B-byte block of data (the last block may be
// shorter), little-endian; B is 64 KiB. The footer, all little-endian:
//
//	[0:4]   magic "TLSH"
//	[4:8]   format version (1)
//	[8:16]  data length D
//	[16:20] block size B
//	[20:24] block count ceil(D/B)
//	[24:28] reserved, zero
//	[28:32] CRC32C of footer bytes [0:28]
//
// A file is valid only if its size is exactly D + 4*ceil(D/B) + 32. A
// shard that fails any of these checks is reported corrupt, never served.
//
// # Authentication
//
// Every request except /healthz, /readyz and /metrics must carry a clusterauth
// signature made with the cluster secret.
package chunkserver
