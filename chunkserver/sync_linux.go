package chunkserver

import (
	"os"

	"golang.org/x/sys/unix"
)

// oDirect opens shard temp files for direct I/O. Shard data then goes
// from our buffer to the device without passing through the page cache;
// with the flush that follows, that costs a fraction of the CPU of a
// buffered write (see BenchmarkPutDirect). Direct writes must start at an
// aligned offset and address and have an aligned length; the unaligned
// end of a shard is written after setDirect(f, false).
const oDirect = unix.O_DIRECT

// dioAlign is the alignment direct I/O needs: the largest logical block
// size of common devices.
const dioAlign = 4096

// setDirect switches f to direct I/O (on) or buffered I/O. Turning
// direct I/O on fails with EINVAL where the filesystem does not support it.
func setDirect(f *os.File, on bool) error {
	fd := f.Fd()
	fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		fl |= unix.O_DIRECT
	} else {
		fl &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(fd, unix.F_SETFL, fl)
	return err
}

// syncFS flushes every file and directory change on the filesystem holding
// f (syncfs(2)); groupSync batches concurrent shard writes behind one call.
func syncFS(f *os.File) error {
	return unix.Syncfs(int(f.Fd()))
}
