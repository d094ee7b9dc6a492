package chunkserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// A shardReader reads verified data from one open shard file.
type shardReader struct {
	s    *Server
	d    *disk
	f    *os.File
	id   string
	size int64 // file size
	ft   footer
	st   *ioState
	buf  []byte // st.buf, or a larger buffer if a block does not fit

	// whole: the entire file is in buf.
	whole bool
	// tbl holds the checksums of blocks tblFirst, tblFirst+1, ...
	tbl      []byte
	tblFirst int64
}

// openShard finds shard id on the disks and checks its footer. If
// readAll is set and the file fits in the I/O buffer, it is read whole,
// so a small shard costs one read. The caller must close the reader.
func (s *Server) openShard(id string, readAll bool) (*shardReader, error) {
	if !ValidShardID(id) {
		return nil, fmt.Errorf("%w: invalid shard id %q", ErrBadRequest, id)
	}
	r := &shardReader{s: s, id: id}
	for _, d := range s.disks {
		if d.lock == nil {
			continue
		}
		f, err := os.Open(d.shardPath(id))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open shard %s on %s: %w", id, d.path, err)
		}
		r.d, r.f = d, f
		break
	}
	if r.f == nil {
		return nil, fmt.Errorf("shard %s: %w", id, ErrNotFound)
	}
	r.st = s.getState()
	r.buf = r.st.buf
	if err := r.init(readAll); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *shardReader) init(readAll bool) error {
	fi, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("stat shard %s on %s: %w", r.id, r.d.path, err)
	}
	r.size = fi.Size()
	if r.size < footerSize {
		return r.corrupt(-1, "file of %d bytes is too short", r.size)
	}
	var tail []byte
	if readAll && r.size <= int64(len(r.buf)) {
		tail = r.buf[:r.size]
		r.whole = true
	} else {
		tail = r.st.tail[:min(r.size, tailSize)]
	}
	tailOff := r.size - int64(len(tail))
	if err := r.readAt(tail, tailOff); err != nil {
		return err
	}
	r.ft, err = parseFooter(tail[len(tail)-footerSize:], r.size)
	if err != nil {
		return r.corrupt(-1, "%v", err)
	}
	// Keep whatever part of the table the tail read brought in.
	tableOff, tableEnd := r.ft.dataLen, r.size-footerSize
	first := max(0, (tailOff-tableOff+3)/4)
	r.tblFirst = first
	r.tbl = tail[tableOff+4*first-tailOff : tableEnd-tailOff]
	if r.ft.blockSize > int64(len(r.buf)) {
		// Written with a block larger than our buffer (another
		// configuration); rare enough to allocate.
		r.buf = make([]byte, r.ft.blockSize)
		r.whole = false
	}
	return nil
}

func (r *shardReader) close() {
	r.f.Close()
	r.s.putState(r.st)
}

// readAt fills p from offset off. A short file or an I/O error means the
// shard cannot be read back as stored, which is reported as corruption so
// that the client reconstructs the data and the shard gets repaired.
func (r *shardReader) readAt(p []byte, off int64) error {
	_, err := r.f.ReadAt(p, off)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, syscall.EIO):
		return r.corrupt(off/r.s.blockSize, "read %d bytes at %d: %v", len(p), off, err)
	default:
		return fmt.Errorf("read shard %s on %s: %w", r.id, r.d.path, err)
	}
}

func (r *shardReader) corrupt(block int64, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	r.s.log.Error("corrupt shard", "shard", r.id, "disk", r.d.id, "path", r.d.shardPath(r.id), "block", block, "problem", msg)
	return fmt.Errorf("shard %s on disk %s: %w: %s", r.id, r.d.id, ErrCorrupt, msg)
}

// loadTable makes the checksums of blocks [first, end) available.
func (r *shardReader) loadTable(first, end int64) error {
	if first >= r.tblFirst && end <= r.tblFirst+int64(len(r.tbl)/4) {
		return nil
	}
	n := int(4 * (end - first))
	if cap(r.st.table) < n {
		r.st.table = make([]byte, n)
	}
	r.tbl, r.tblFirst = r.st.table[:n], first
	return r.readAt(r.tbl, r.ft.dataLen+4*first)
}

// verified returns the shard bytes from pos up to at most end, reading
// and checking whole blocks; it returns fewer bytes than asked when the
// range is larger than the buffer. loadTable must cover the blocks.
func (r *shardReader) verified(pos, end int64) ([]byte, error) {
	bs := r.ft.blockSize
	first := pos / bs
	start := first * bs
	stop := min(start+int64(len(r.buf))/bs*bs, (end+bs-1)/bs*bs, r.ft.dataLen)
	var data []byte
	if r.whole {
		data = r.buf[start:stop]
	} else {
		data = r.buf[:stop-start]
		if err := r.readAt(data, start); err != nil {
			return nil, err
		}
	}
	for i := int64(0); i < int64(len(data)); i += bs {
		b := first + i/bs
		want := binary.LittleEndian.Uint32(r.tbl[4*(b-r.tblFirst):])
		if got := crc32.Checksum(data[i:min(i+bs, int64(len(data)))], castagnoli); got != want {
			return nil, r.corrupt(b, "block %d (offset %d): crc32c %08x, stored %08x", b, start+i, got, want)
		}
	}
	return data[pos-start : min(end, stop)-start], nil
}

// writeRange writes bytes [off, off+n) of the shard to w, calling
// started before the first byte. No byte of a block is written before the
// block has been verified.
func (r *shardReader) writeRange(ctx context.Context, off, n int64, w io.Writer, started func()) error {
	if n == 0 {
		started()
		return nil
	}
	bs := r.ft.blockSize
	end := off + n
	if err := r.loadTable(off/bs, (end+bs-1)/bs); err != nil {
		return err
	}
	for pos := off; pos < end; {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := r.verified(pos, end)
		if err != nil {
			return err
		}
		if pos == off {
			started()
		}
		if _, err := w.Write(p); err != nil {
			return errWrite{err}
		}
		pos += int64(len(p))
	}
	return nil
}

// errWrite marks a failure to send, as opposed to a failure to read.
type errWrite struct{ err error }

func (e errWrite) Error() string { return "send: " + e.err.Error() }
func (e errWrite) Unwrap() error { return e.err }

// VerifyShard reads all of shard id and checks every block against its
// checksum. It returns an error wrapping ErrNotFound if the shard is not
// stored here and ErrCorrupt if it cannot be read back intact. It is the
// primitive a background scrubber paces over Inventory.
func (s *Server) VerifyShard(ctx context.Context, id string) error {
	_, err := s.verifyShard(ctx, id, io.Discard)
	return err
}

// verifyShard is VerifyShard sending the verified data to w (which may
// pace it), and returning the shard's length.
func (s *Server) verifyShard(ctx context.Context, id string, w io.Writer) (int64, error) {
	r, err := s.openShard(id, true)
	if err != nil {
		return 0, err
	}
	defer r.close()
	return r.ft.dataLen, r.writeRange(ctx, 0, r.ft.dataLen, w, func() {})
}
