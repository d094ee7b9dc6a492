package mount

import (
	"context"
	"errors"
	"syscall"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/meta/metaapi"
)

// maxName is the longest name of one directory entry (NAME_MAX).
const maxName = 255

// toErrno maps a store error onto the errno a filesystem call answers with.
// Anything the kernel cannot act on — the cluster unreachable, a timeout, a
// server error — is EIO.
func toErrno(err error) syscall.Errno {
	// Only errnos this package chose pass through as they are; one from deep
	// in a network call (ECONNREFUSED, ...) means nothing to the caller.
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, syscall.ENOSPC):
		return syscall.ENOSPC // the local write-back directory is full
	case errors.Is(err, syscall.EFBIG):
		return syscall.EFBIG // longer than the write-back directory's filesystem allows
	case errors.Is(err, metaapi.ErrNoSuchKey):
		return syscall.ENOENT
	case errors.Is(err, metaapi.ErrInvalidName):
		return syscall.EINVAL
	case errors.Is(err, client.ErrInvalidRange):
		return syscall.EINVAL
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	return syscall.EIO
}

// checkName refuses names the store cannot hold.
func checkName(name string) syscall.Errno {
	if len(name) > maxName {
		return syscall.ENAMETOOLONG
	}
	if err := metaapi.ValidateKey(name); err != nil {
		return syscall.EINVAL
	}
	return 0
}
