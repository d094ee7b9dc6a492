//go:build !linux

package chunkserver

import "os"

func fdatasync(f *os.File) error { return f.Sync() }
