//go:build !linux

package chunkserver

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

const (
	oDirect  = 0
	dioAlign = 4096
)

func setDirect(*os.File, bool) error { return nil }
