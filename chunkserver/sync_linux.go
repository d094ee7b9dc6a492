package chunkserver

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync flushes the file's data and the metadata needed to read it
// back (its size), skipping the mtime update a full fsync would also
// write.
func fdatasync(f *os.File) error {
	return unix.Fdatasync(int(f.Fd()))
}
