//go:build !linux

package chunkserver

import (
	"os"
	"syscall"
)

const (
	oDirect  = 0
	dioAlign = 4096
)

func setDirect(*os.File, bool) error { return nil }

// syncFS flushes everything written so far; without syncfs(2) that is the
// whole system's sync(2).
func syncFS(*os.File) error {
	syscall.Sync()
	return nil
}
