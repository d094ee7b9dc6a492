package chunkserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// fullCooldown is how long a disk that ran out of space takes no new
// shards.
const fullCooldown = 30 * time.Second

// pickDisk chooses the healthy disk with the most free space (after
// writes in progress) that can take a shard of fileSize bytes plus the
// reserve, and reserves the space on it; release it with
// d.reserved.Add(-fileSize). Ties, as between directories on one
// filesystem, are broken round-robin so such disks share the load.
func (s *Server) pickDisk(fileSize int64) (*disk, error) {
	var best *disk
	var bestFree int64
	start := s.next.Add(1)
	now := time.Now().UnixNano()
	for i := range s.disks {
		d := s.disks[(start+uint64(i))%uint64(len(s.disks))]
		if !d.healthy() || d.fullUntil.Load() > now {
			continue
		}
		_, free, err := d.space()
		if err != nil {
			d.fail(err)
			s.log.Error("disk failed", "disk", d.path, "err", err)
			continue
		}
		free -= d.reserved.Load()
		if free-fileSize >= s.reserve && (best == nil || free > bestFree) {
			best, bestFree = d, free
		}
	}
	if best == nil {
		return nil, ErrInsufficientStorage
	}
	best.reserved.Add(fileSize)
	return best, nil
}

// putShard stores size bytes read from body as shard id and returns the
// disk it went to. A size of unknownSize means the body ends where body
// returns io.EOF; want must then supply the CRC32C. want is called after
// body has returned io.EOF and returns the CRC32C the whole body must
// have, if the sender supplied one. Nothing is kept unless everything
// succeeds.
//
// limit bounds a shard of unknown size (size -1); it is at most the server's
// MaxShardSize, and is what the disk reservation is made for.
func (s *Server) putShard(ctx context.Context, id string, size, limit int64, body io.Reader, want func() (uint32, bool, error)) (*disk, error) {
	if !ValidShardID(id) {
		return nil, fmt.Errorf("%w: invalid shard id %q", ErrBadRequest, id)
	}
	if size < unknownSize || size > s.maxShardSize {
		return nil, fmt.Errorf("%w: shard size %d out of range [0, %d]", ErrBadRequest, size, s.maxShardSize)
	}
	// A shard of unknown size may grow to the largest we accept; holding
	// room for that is what keeps concurrent writes from overfilling a
	// disk they all looked at first.
	if limit <= 0 || limit > s.maxShardSize {
		limit = s.maxShardSize
	}
	fsize := fileSize(limit, s.blockSize)
	if size >= 0 {
		fsize = fileSize(size, s.blockSize)
	}
	d, err := s.pickDisk(fsize)
	if err != nil {
		return nil, err
	}
	defer d.reserved.Add(-fsize)
	if err := s.writeShard(ctx, d, id, size, limit, body, want); err != nil {
		return nil, err
	}
	return d, nil
}

// unknownSize is the shard size of a PUT whose body ends where its
// chunked encoding does.
const unknownSize = -1

// writeShard writes the shard to a temp file on d, makes it durable and
// renames it into place.
func (s *Server) writeShard(ctx context.Context, d *disk, id string, size, limit int64, body io.Reader, want func() (uint32, bool, error)) (err error) {
	tmp := d.tmp + "/" + id + "." + strconv.FormatUint(s.tmpSeq.Add(1), 36)
	canDirect := oDirect != 0 && !s.noDirect && !d.noDirect.Load()
	tf := tempFile{direct: canDirect && size >= s.directMin}
	// A body of unknown length starts buffered, like a small shard, and
	// turns to direct I/O once it has proved large.
	lateDirect := canDirect && size == unknownSize
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if tf.direct {
		tf.f, err = os.OpenFile(tmp, flags|oDirect, 0o644)
		if errors.Is(err, syscall.EINVAL) {
			// The filesystem does not do direct I/O (tmpfs, some FUSE).
			s.noDirectOn(d)
			tf.direct = false
		}
	}
	if !tf.direct {
		tf.f, err = os.OpenFile(tmp, flags, 0o644)
	}
	if err != nil {
		return s.diskError(d, "create temp file", err)
	}
	f := tf.f
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()

	st := s.getWriteState()
	defer s.putWriteState(st)
	var aw *asyncWriter // from the second piece on
	defer func() {
		if aw != nil {
			aw.finish() // before st goes back: the writer may still use its buffer
		}
	}()
	buf, table := st.buf, st.table[:0]
	bs := int(s.blockSize)
	var whole uint32  // CRC32C of all data so far
	var dataLen int64 // bytes of data so far
	tailDone := false
	// Every piece but the last fills buf, so the file offset stays
	// aligned for direct I/O and block boundaries fall on piece
	// boundaries. With an unknown size the last piece is the one that
	// meets EOF, possibly empty.
	for last := size == 0; !last; {
		if err := ctx.Err(); err != nil {
			return err
		}
		var n int
		if size >= 0 {
			n = int(min(size-dataLen, int64(len(buf))))
			if _, err := io.ReadFull(body, buf[:n]); err != nil {
				return fmt.Errorf("%w: read body: %v (shard size %d)", ErrBadRequest, err, size)
			}
			last = dataLen+int64(n) == size
		} else {
			var rerr error
			n, rerr = io.ReadFull(body, buf)
			switch rerr {
			case nil:
			case io.EOF, io.ErrUnexpectedEOF:
				last = true
			default:
				return fmt.Errorf("%w: read body: %v (after %d bytes)", ErrBadRequest, rerr, dataLen)
			}
			if dataLen+int64(n) > limit {
				return fmt.Errorf("%w: body longer than the shard's limit of %d bytes", ErrBadRequest, limit)
			}
		}
		dataLen += int64(n)
		for off := 0; off < n; off += bs {
			blk := buf[off:min(off+bs, n)]
			c := crc32.Checksum(blk, castagnoli)
			table = binary.LittleEndian.AppendUint32(table, c)
			op := s.blockOp
			if len(blk) != bs {
				op = crcShift(int64(len(blk)))
			}
			whole = crcCombine(whole, c, op)
		}
		out := buf[:n]
		// For small shards the table and footer go out in the same
		// write as the data.
		if last && n+len(table)+footerSize <= cap(buf) {
			out = appendFooter(append(out, table...), footer{dataLen, s.blockSize, int64(len(table) / 4)})
			tailDone = true
		}
		toDirect := lateDirect && dataLen >= s.directMin
		if toDirect {
			lateDirect = false
		}
		if last && aw == nil {
			// A shard of one piece, as most are: no goroutine.
			if toDirect {
				if err := s.setDirect(d, &tf); err != nil {
					return err
				}
			}
			if err := s.write(d, &tf, out, true); err != nil {
				return err
			}
			continue
		}
		if aw == nil {
			aw = s.startAsyncWriter(d, &tf)
		}
		if err := aw.submit(out, toDirect); err != nil {
			return err
		}
		if !last {
			buf = aw.buffer()
		}
	}
	st.table = table[:0] // keep any growth for the next request
	if aw != nil {
		if err := aw.finish(); err != nil {
			return err
		}
	}

	if size >= 0 {
		// The body must end exactly here; only then are the trailers in.
		var extra [1]byte
		if n, err := io.ReadFull(body, extra[:]); n > 0 {
			return fmt.Errorf("%w: body longer than shard size %d", ErrBadRequest, size)
		} else if err != io.EOF {
			return fmt.Errorf("%w: read body: %v", ErrBadRequest, err)
		}
	}
	var c uint32
	ok := false
	if want != nil {
		if c, ok, err = want(); err != nil {
			return err
		}
	}
	if ok && c != whole {
		return fmt.Errorf("%w: crc32c mismatch: body has %08x, sender says %08x", ErrBadRequest, whole, c)
	}
	if !ok && size == unknownSize {
		return fmt.Errorf("%w: no %s for a body of unknown length", ErrBadRequest, HeaderCRC32C)
	}
	if !tailDone {
		tail := appendFooter(table, footer{dataLen, s.blockSize, int64(len(table) / 4)})
		st.table = tail[:0]
		if err := s.write(d, &tf, tail, false); err != nil {
			return err
		}
	}
	err = f.Close()
	f = nil
	if err != nil {
		return s.diskError(d, "close", err)
	}
	// One flush, after the rename, makes both the data and the rename
	// durable. A crash before it may leave the shard renamed into place
	// with some of its data lost, but that shard was never acknowledged,
	// so no object refers to it, and its per-block checksums and footer
	// make it read as corrupt, never as data. Flushing the data before
	// the rename as well would cost a second round of device flushes on
	// every write and protect nothing that a reader relies on.
	if s.syncBeforeRename && !s.noSync {
		if err := s.waitDurable(ctx, d, "sync data"); err != nil {
			return err
		}
	}
	return s.commit(ctx, d, id, tmp, fileSize(dataLen, s.blockSize))
}

// An asyncWriter writes a shard's pieces to its temp file on a goroutine
// of its own, so that reading the next piece from the network overlaps
// writing the last one: a direct write blocks until the device has the
// data, and goroutine samples of a 4-stream 64 MiB PUT found the handlers
// blocked in write(2) nearly half the time, the sender stalled meanwhile.
// Two buffers take turns: the one being filled and the one being written.
type asyncWriter struct {
	s      *Server
	d      *disk
	tf     *tempFile
	jobs   chan writeJob
	free   chan []byte
	exit   chan struct{}
	failed atomic.Bool
	err    error // the first failed write; read after exit
	spare  *ioState
	given  bool // spare's buffer has been handed out
	done   bool // finish has run
}

type writeJob struct {
	p        []byte
	toDirect bool // switch the file to direct I/O first
}

func (s *Server) startAsyncWriter(d *disk, tf *tempFile) *asyncWriter {
	w := &asyncWriter{
		s: s, d: d, tf: tf,
		jobs:  make(chan writeJob, 1),
		free:  make(chan []byte, 2),
		exit:  make(chan struct{}),
		spare: s.getWriteState(),
	}
	go w.run()
	return w
}

func (w *asyncWriter) run() {
	defer close(w.exit)
	for j := range w.jobs {
		if w.err == nil && j.toDirect {
			w.err = w.s.setDirect(w.d, w.tf)
		}
		if w.err == nil {
			w.err = w.s.write(w.d, w.tf, j.p, true)
		}
		if w.err != nil {
			w.failed.Store(true)
		}
		w.free <- j.p[:cap(j.p)] // the whole buffer: p may be shorter
	}
}

// submit queues p, which must start at the beginning of a buffer, for
// writing. It fails, without queueing, once a write has failed.
func (w *asyncWriter) submit(p []byte, toDirect bool) error {
	if w.failed.Load() {
		return w.finish()
	}
	w.jobs <- writeJob{p, toDirect}
	return nil
}

// buffer returns a buffer to fill next, waiting for a write to finish
// with one if both are taken.
func (w *asyncWriter) buffer() []byte {
	if !w.given {
		w.given = true
		return w.spare.buf
	}
	return <-w.free
}

// finish waits for every queued write and returns the first error.
// It may be called more than once.
func (w *asyncWriter) finish() error {
	if !w.done {
		w.done = true
		close(w.jobs)
		<-w.exit
		w.s.putWriteState(w.spare)
	}
	return w.err
}

// waitDurable waits for d's next flush. A client that hangs up meanwhile
// cancels only its own wait; only a failed flush is the disk's fault.
func (s *Server) waitDurable(ctx context.Context, d *disk, op string) error {
	err := d.durable.wait(ctx)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return s.diskError(d, op, err)
	}
	return nil
}

// A tempFile is a shard being written, with direct I/O while the writes
// allow it.
type tempFile struct {
	f      *os.File
	direct bool
}

// write appends p to the file. fromBuf says p starts at the beginning of
// the (aligned) I/O buffer; all but the last such write have an aligned
// length, so the file offset stays aligned until the tail, which is
// written buffered.
func (s *Server) write(d *disk, tf *tempFile, p []byte, fromBuf bool) error {
	if s.writeFault != nil {
		if err := s.writeFault(d.path); err != nil {
			return s.diskError(d, "write", err)
		}
	}
	if tf.direct {
		k := 0
		if fromBuf {
			k = len(p) &^ (dioAlign - 1)
		}
		if k > 0 {
			_, err := tf.f.Write(p[:k])
			if err != nil && !errors.Is(err, syscall.EINVAL) {
				return s.diskError(d, "write", err)
			}
			if err == nil {
				p = p[k:]
			}
			// On EINVAL (alignment the device does not accept) nothing
			// was written; write it all buffered.
		}
		if len(p) == 0 {
			return nil
		}
		if err := setDirect(tf.f, false); err != nil {
			return s.diskError(d, "fcntl", err)
		}
		tf.direct = false
	}
	if _, err := tf.f.Write(p); err != nil {
		return s.diskError(d, "write", err)
	}
	return nil
}

// setDirect switches a buffered temp file on d to direct I/O. The file
// offset must be aligned. A filesystem that refuses is written buffered
// from then on, as when it refuses to open a file for direct I/O.
func (s *Server) setDirect(d *disk, tf *tempFile) error {
	err := setDirect(tf.f, true)
	switch {
	case err == nil:
		tf.direct = true
	case errors.Is(err, syscall.EINVAL):
		s.noDirectOn(d)
	default:
		return s.diskError(d, "fcntl", err)
	}
	return nil
}

func (s *Server) noDirectOn(d *disk) {
	d.noDirect.Store(true)
	s.log.Info("disk does not support direct I/O; using buffered writes", "disk", d.path)
}

// diskError turns an I/O error on d into ErrInsufficientStorage if the
// disk is full, and otherwise marks the disk failed.
func (s *Server) diskError(d *disk, op string, err error) error {
	if isNoSpace(err) {
		d.fullUntil.Store(time.Now().Add(fullCooldown).UnixNano())
		s.log.Warn("disk full", "disk", d.path, "op", op)
		return fmt.Errorf("%w: %s on %s: %v", ErrInsufficientStorage, op, d.path, err)
	}
	err = fmt.Errorf("%s on %s: %w", op, d.path, err)
	d.fail(err)
	s.log.Error("disk failed, taking no more shards", "disk", d.path, "err", err)
	return err
}

// commit renames the temp file into place and removes any older copy of
// the shard from other disks, so that a shard lives on exactly one disk
// and readers, which take the first copy they find, never see a stale one.
func (s *Server) commit(ctx context.Context, d *disk, id, tmp string, fsize int64) error {
	dst := d.shardPath(id)
	mu := s.stripe(id)
	mu.Lock()
	var old int64 = -1
	if fi, err := os.Lstat(dst); err == nil {
		old = fi.Size()
	}
	if err := os.Rename(tmp, dst); err != nil {
		mu.Unlock()
		return s.diskError(d, "rename", err)
	}
	if old >= 0 {
		d.used.Add(fsize - old)
	} else {
		d.count.Add(1)
		d.used.Add(fsize)
	}
	for _, e := range s.disks {
		if e != d && e.lock != nil {
			if err := e.remove(id); err != nil {
				s.log.Error("cannot remove older copy of overwritten shard", "shard", id, "err", err)
			}
		}
	}
	mu.Unlock()

	// The one flush of a shard write: the data and the rename. See
	// writeShard and BenchmarkPutSync.
	if !s.noSync {
		if err := s.waitDurable(ctx, d, "sync shard"); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes id from d if it is there. The caller holds id's stripe.
func (d *disk) remove(id string) error {
	p := d.shardPath(id)
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = os.Remove(p)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	d.count.Add(-1)
	d.used.Add(-fi.Size())
	return nil
}

// deleteShard removes shard id from every disk. Deleting a missing shard
// is not an error. The removal is not fsynced: a shard that reappears
// after a crash is found by the inventory and collected again.
func (s *Server) deleteShard(id string) error {
	if !ValidShardID(id) {
		return fmt.Errorf("%w: invalid shard id %q", ErrBadRequest, id)
	}
	mu := s.stripe(id)
	mu.Lock()
	defer mu.Unlock()
	var errs []error
	for _, d := range s.disks {
		if d.lock != nil {
			errs = append(errs, d.remove(id))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete shard %s: %w", id, err)
	}
	return nil
}
