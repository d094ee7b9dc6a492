package mount

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/meta/metaapi"
)

// A write session is the state of a file open for writing. It is in one of
// three states:
//
//   - idle: nothing written since the last store; reads come from the stored
//     version (base).
//   - streaming: every write so far continued where the previous one ended.
//     The bytes go to the chunk servers as they come, through a multipart
//     upload that nobody else sees (the first bytes up to the inline limit
//     wait in memory, so a small file is one inline Put). Appending to an
//     existing file streams its stored bytes first.
//   - spooling: a write went backwards or far ahead, the file was truncated,
//     or someone read it: the file's bytes live in a local sparse file
//     (write-back cache), filled from the stored version (or from what was
//     already streamed) only where it is read, and wholly when stored.
//
// close and fsync store the file: a streaming session commits the upload's
// segments as the object (no data copied), a spooling one uploads the local
// file. Until then other mounts and S3 see the previous version, and a
// writer that dies leaves no half-written file.
type session struct {
	n *node
	f *fsys

	mu      sync.Mutex
	base    metaapi.Object // the stored version, with Inline for small ones; zero for a new or truncated file
	size    int64
	dirty   bool  // differs from base
	pending bool  // never stored: the file exists only in this mount
	err     error // an upload failed: the session refuses work until truncated to zero
	st      *stream
	sp      *spool
	rd      *fileReader // reads of base while idle
	// unsaved mirrors dirty || pending for readers that hold the node's
	// lock, which must not wait for s.mu (writers hold s.mu, then n.mu).
	unsaved atomic.Bool

	refs int // open write handles; guarded by n.mu
}

// pipeDepth is how many writes (of up to 1 MiB each) may wait for the
// upload of a streaming file.
const pipeDepth = 8

// maxHoleFill is how far past the end a streaming write may start: the gap
// is streamed as zeros. Beyond it the file goes to the spool, which keeps
// holes sparse.
const maxHoleFill = 8 << 20

func newSession(n *node, base metaapi.Object, pending bool) *session {
	s := &session{n: n, f: n.fsys, base: base, size: base.Size}
	s.setState(pending, pending)
	return s
}

// setState sets dirty and pending (s.mu held).
func (s *session) setState(dirty, pending bool) {
	s.dirty, s.pending = dirty, pending
	s.unsaved.Store(dirty || pending)
}

// unstored reports whether the session holds changes the store lacks.
func (s *session) unstored() bool { return s.unsaved.Load() }

// touch publishes the session's size and a new mtime to the node.
func (s *session) touch() {
	now := time.Now()
	s.n.mu.Lock()
	s.n.a.size, s.n.a.mtime, s.n.a.ctime = s.size, now, now
	s.n.agen++
	s.n.mu.Unlock()
}

func (s *session) write(ctx context.Context, p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	var err error
	switch {
	case s.sp != nil:
	case s.st != nil:
		if off < s.st.written || off-s.st.written > maxHoleFill {
			err = s.toSpool(ctx)
		}
	case off >= s.size && off-s.size <= maxHoleFill:
		s.st, err = s.newStream(s.size)
	default:
		err = s.toSpool(ctx)
	}
	if err == nil {
		if s.sp != nil {
			err = s.sp.write(p, off)
		} else {
			err = s.st.write(ctx, p, off)
		}
	}
	if err != nil {
		return 0, s.fail(err)
	}
	s.size = max(s.size, off+int64(len(p)))
	s.setState(true, s.pending)
	s.touch()
	return len(p), nil
}

// fail records an error that lost written bytes (a broken upload), after
// which the session refuses work until truncated to zero or released.
func (s *session) fail(err error) error {
	if s.st != nil && s.st.failed != nil {
		s.err = err
	}
	return err
}

func (s *session) read(ctx context.Context, p []byte, off int64) (fuse.ReadResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if off >= s.size {
		return fuse.ReadResultData(nil), nil
	}
	p = p[:min(int64(len(p)), s.size-off)]
	if s.st != nil {
		// Reading what is being streamed: the bytes are needed locally now.
		if err := s.toSpool(ctx); err != nil {
			return nil, s.fail(err)
		}
	}
	if s.sp != nil {
		n, err := s.sp.read(ctx, s.f.cl, p, off)
		return fuse.ReadResultData(p[:n]), err
	}
	if s.rd == nil {
		s.rd = newFileReader(s.f.cl, s.base)
	}
	return s.rd.read(ctx, p, off)
}

func (s *session) truncate(ctx context.Context, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if size == 0 {
		// Starting over clears a failed upload too.
		s.discard()
		s.err = nil
		s.st = &stream{s: s}
		s.size = 0
		s.setState(true, s.pending)
		s.touch()
		return nil
	}
	if s.err != nil {
		return s.err
	}
	if size == s.size {
		return nil
	}
	var err error
	switch {
	case s.st != nil && size > s.st.written && size-s.st.written <= maxHoleFill:
		err = s.st.write(ctx, make([]byte, size-s.st.written), s.st.written)
	case s.sp == nil:
		if err = s.toSpool(ctx); err == nil {
			err = s.sp.truncate(size)
		}
	default:
		err = s.sp.truncate(size)
	}
	if err != nil {
		return s.fail(err)
	}
	s.size = size
	s.setState(true, s.pending)
	s.touch()
	return nil
}

// newStream starts streaming after the first from bytes of base.
func (s *session) newStream(from int64) (*stream, error) {
	st := &stream{s: s, written: from}
	if from == 0 {
		return st, nil
	}
	if len(s.base.Segments) == 0 {
		// A small stored file: its bytes start the new version in memory.
		if int64(len(s.base.Inline)) < from {
			return nil, fmt.Errorf("stored version of %s holds %d of %d bytes inline", s.base.Key, len(s.base.Inline), from)
		}
		st.head = append([]byte(nil), s.base.Inline[:from]...)
		return st, nil
	}
	st.prefix, st.prefixLen = s.base, from
	return st, nil
}

// toSpool moves the session's bytes into a local spool file: from the idle
// stored version, or from a stream (whose upload then becomes the spool's
// base, read back only where needed).
func (s *session) toSpool(ctx context.Context) error {
	sp, err := newSpool(s.f.opts.CacheDir)
	if err != nil {
		return err
	}
	switch st := s.st; {
	case st == nil:
		sp.base, sp.baseLen = s.base, s.size
	case st.upload == "":
		if _, err := sp.file.WriteAt(st.head, 0); err != nil {
			sp.close(s.f)
			return fmt.Errorf("spool: %w", err)
		}
	default:
		part, err := st.finish(ctx)
		if err != nil {
			sp.close(s.f)
			s.st = nil
			s.err = err
			return err
		}
		sp.base = metaapi.Object{Bucket: s.f.bucket, Key: st.key, Size: st.written, Segments: part.Segments}
		sp.baseLen = st.written
		sp.upload, sp.uploadKey = st.upload, st.key
	}
	if err := sp.file.Truncate(max(s.size, sp.baseLen)); err != nil {
		sp.close(s.f)
		return fmt.Errorf("spool: %w", err)
	}
	s.st, s.sp = nil, sp
	return nil
}

// store makes the session's bytes the stored version of the file, if they
// differ from it. A file that left the tree is not stored.
func (s *session) store(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if !s.dirty && !s.pending {
		return nil
	}
	key, ok := s.n.key()
	s.n.mu.Lock()
	a := s.n.a
	gone := s.n.gone
	s.n.mu.Unlock()
	if !ok || gone {
		s.discard()
		s.setState(false, false)
		return nil
	}
	opts := client.PutOptions{ContentType: a.ctype, Meta: a.encode()}
	var o metaapi.Object
	var err error
	switch {
	case s.sp != nil:
		o, err = s.sp.store(ctx, s.f, key, s.size, opts)
	case s.st != nil:
		started := s.st.started()
		o, err = s.st.store(ctx, key, opts)
		switch {
		case err == nil:
			s.st = nil
		case started:
			// The upload is over either way; its bytes are lost.
			s.st, s.err = nil, err
		}
	default:
		// Idle yet unstored: a new or truncated file nobody wrote to.
		o, err = s.f.cl.Put(ctx, s.f.bucket, key, bytes.NewReader(nil), 0, opts)
		o.Inline = []byte{}
	}
	if err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	// The node learns the stored version before the session stops counting
	// as unstored, so that the change feed never sees the node in between
	// (see verifyEchoes).
	s.n.stored(o)
	s.base = o
	s.setState(false, false)
	if s.rd != nil {
		s.rd.close()
		s.rd = nil
	}
	return nil
}

// discard drops unstored bytes: an upload in progress, a spool file.
func (s *session) discard() {
	if s.st != nil {
		s.st.abort()
		s.st = nil
	}
	if s.sp != nil {
		s.sp.close(s.f)
		s.sp = nil
	}
}

// close ends the session when the last write handle is released.
func (s *session) close(ctx context.Context) {
	s.mu.Lock()
	failed := s.err != nil // and already reported to the writer
	s.mu.Unlock()
	if err := s.store(ctx); err != nil {
		if !failed {
			s.f.log.Warn("mount: store on release failed; the previous version stays", "key", s.n.name(), "err", err)
		}
		s.n.revert()
	}
	s.mu.Lock()
	s.discard()
	if s.rd != nil {
		s.rd.close()
		s.rd = nil
	}
	s.mu.Unlock()
}

// stream is a file being written front to back.
type stream struct {
	s       *session
	written int64  // the file's length so far
	head    []byte // bytes not yet uploaded (all of them while the file is small)
	// prefix are stored bytes the upload starts with (an append).
	prefix    metaapi.Object
	prefixLen int64

	upload, key string // the multipart upload, once started, and its key
	failed      error  // a write into the upload failed: bytes were lost
	pw          *bufPipe
	cancel      context.CancelFunc
	done        chan struct{} // closed when the upload returned
	part        metaapi.Part
	err         error
}

func (st *stream) started() bool { return st.upload != "" }

func (st *stream) write(ctx context.Context, p []byte, off int64) error {
	f := st.s.f
	if gap := off - st.written; gap > 0 {
		if err := st.write(ctx, make([]byte, gap), st.written); err != nil {
			return err
		}
	}
	if !st.started() {
		if st.prefixLen == 0 && int64(len(st.head)+len(p)) <= f.inlineMax {
			st.head = append(st.head, p...)
			st.written += int64(len(p))
			return nil
		}
		if err := st.start(ctx); err != nil {
			return err
		}
	}
	// A store that stops taking bytes fails the write after the timeout
	// instead of hanging it.
	t := time.AfterFunc(f.opts.Timeout, st.cancel)
	_, err := st.pw.Write(p)
	t.Stop()
	if err != nil {
		st.failed = fmt.Errorf("stream %s: %w", st.key, err)
		return st.failed
	}
	st.written += int64(len(p))
	return nil
}

// start opens the upload and feeds it the prefix and the head.
func (st *stream) start(ctx context.Context) error {
	f := st.s.f
	key, ok := st.s.n.key()
	if !ok {
		return fmt.Errorf("stream: %w", errGone)
	}
	cctx, cancel := f.ctx(ctx)
	defer cancel()
	id, err := f.cl.CreateMultipart(cctx, f.bucket, key, client.PutOptions{})
	if err != nil {
		return err
	}
	uctx, ucancel := context.WithCancel(context.Background())
	var srcs []io.Reader
	if st.prefixLen > 0 {
		rd, err := f.cl.Open(uctx, st.prefix, 0, st.prefixLen)
		if err != nil {
			ucancel()
			f.abortUpload(key, id)
			return err
		}
		srcs = append(srcs, rd)
	}
	pw := newBufPipe(pipeDepth)
	// The upload is one part holding every byte of the file, so its ETag
	// (the MD5 PutPart computes as it reads) is the file's.
	body := io.MultiReader(append(srcs, bytes.NewReader(st.head), pw)...)
	st.upload, st.key, st.pw, st.cancel, st.done = id, key, pw, ucancel, make(chan struct{})
	st.head = nil
	f.uploads.Add(1)
	go func() {
		defer f.uploads.Done()
		defer close(st.done)
		st.part, st.err = f.cl.PutPart(uctx, f.bucket, key, id, 1, body, -1, client.PartOptions{})
		if st.err == nil {
			st.err = uctx.Err()
		}
		pw.stop(errOr(st.err, errUploadEnded))
	}()
	return nil
}

// finish ends the upload and returns its part: the bytes written so far.
func (st *stream) finish(ctx context.Context) (metaapi.Part, error) {
	st.pw.Close()
	select {
	case <-st.done:
	case <-ctx.Done():
		st.cancel()
		<-st.done
	}
	if st.err != nil {
		st.s.f.abortUpload(st.key, st.upload)
		return metaapi.Part{}, fmt.Errorf("stream %s: %w", st.key, st.err)
	}
	return st.part, nil
}

// store makes the streamed bytes the object at key: a small file with one
// Put, a large one by committing the upload's segments under key — no data
// moves — and dropping the upload.
func (st *stream) store(ctx context.Context, key string, opts client.PutOptions) (metaapi.Object, error) {
	f := st.s.f
	if !st.started() {
		o, err := f.cl.Put(ctx, f.bucket, key, bytes.NewReader(st.head), int64(len(st.head)), opts)
		o.Inline = st.head
		return o, err
	}
	part, err := st.finish(ctx)
	if err != nil {
		return metaapi.Object{}, err
	}
	defer f.abortUpload(st.key, st.upload)
	obj := metaapi.Object{
		Bucket: f.bucket, Key: key, Size: st.written, ETag: part.ETag,
		ContentType: opts.ContentType, Meta: opts.Meta,
	}
	for _, seg := range part.Segments {
		seg.Existing = true
		obj.Segments = append(obj.Segments, seg)
	}
	o, err := f.meta.Commit(ctx, metaapi.CommitRequest{Object: obj})
	if err != nil {
		return o, err
	}
	o.Segments = part.Segments
	return o, nil
}

// abort drops the upload.
func (st *stream) abort() {
	if !st.started() {
		return
	}
	st.cancel()
	st.pw.CloseWithError(errAborted)
	<-st.done
	st.s.f.abortUpload(st.key, st.upload)
}

// abortUpload drops a multipart upload in the background; one that cannot
// be dropped now is swept by the gateway's multipart expiry.
func (f *fsys) abortUpload(key, id string) {
	f.uploads.Add(1)
	go func() {
		defer f.uploads.Done()
		ctx, cancel := context.WithTimeout(context.Background(), f.opts.Timeout)
		defer cancel()
		if err := f.cl.AbortMultipart(ctx, f.bucket, key, id); err != nil && !errors.Is(err, metaapi.ErrNoSuchUpload) {
			f.log.Warn("mount: drop upload", "key", key, "err", err)
		}
	}()
}

var (
	errGone        = errors.New("file no longer exists")
	errAborted     = errors.New("upload aborted")
	errUploadEnded = errors.New("upload ended early")
)

func errOr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

// spool is a file's bytes in a local sparse file. [0, baseLen) also exists
// in base (stored, or streamed into an upload) and is copied in only where
// read or at store time; have lists what of it is present.
type spool struct {
	file    *os.File
	base    metaapi.Object
	baseLen int64
	have    []span
	// upload backs base when base is a stream's part; dropped with the spool.
	upload, uploadKey string
}

type span struct{ lo, hi int64 }

// newSpool creates an anonymous file: unlinked at once, so that nothing is
// left behind however the process ends.
func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, "talus-mount-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	os.Remove(f.Name())
	return &spool{file: f}, nil
}

func (sp *spool) close(f *fsys) {
	sp.file.Close()
	if sp.upload != "" {
		f.abortUpload(sp.uploadKey, sp.upload)
		sp.upload = ""
	}
}

// fill copies the missing parts of [lo, hi) ∩ [0, baseLen) in from base.
func (sp *spool) fill(ctx context.Context, cl *client.Client, lo, hi int64) error {
	hi = min(hi, sp.baseLen)
	for _, g := range gaps(sp.have, lo, hi) {
		rd, err := cl.Open(ctx, sp.base, g.lo, g.hi-g.lo)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.NewOffsetWriter(sp.file, g.lo), rd)
		rd.Close()
		if err != nil {
			return fmt.Errorf("fill spool %d-%d: %w", g.lo, g.hi, err)
		}
		sp.have = addSpan(sp.have, g)
	}
	return nil
}

func (sp *spool) read(ctx context.Context, cl *client.Client, p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	if off < sp.baseLen {
		// Fill whole chunks, so that a sequential reader asks the store
		// once per chunk rather than once per kernel read.
		lo := off / raChunk * raChunk
		hi := (end + raChunk - 1) / raChunk * raChunk
		if err := sp.fill(ctx, cl, lo, hi); err != nil {
			return 0, err
		}
	}
	n, err := sp.file.ReadAt(p, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (sp *spool) write(p []byte, off int64) error {
	if _, err := sp.file.WriteAt(p, off); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if off < sp.baseLen {
		sp.have = addSpan(sp.have, span{off, min(off+int64(len(p)), sp.baseLen)})
	}
	return nil
}

func (sp *spool) truncate(size int64) error {
	if err := sp.file.Truncate(size); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if size < sp.baseLen {
		sp.baseLen = size
		sp.have = clipSpans(sp.have, size)
	}
	return nil
}

// store uploads the whole file as the object at key. Afterwards the spool
// holds every byte and needs its base no more.
func (sp *spool) store(ctx context.Context, f *fsys, key string, size int64, opts client.PutOptions) (metaapi.Object, error) {
	if err := sp.fill(ctx, f.cl, 0, sp.baseLen); err != nil {
		return metaapi.Object{}, err
	}
	o, err := f.cl.Put(ctx, f.bucket, key, io.NewSectionReader(sp.file, 0, size), size, opts)
	if err != nil {
		return o, err
	}
	if o.Size <= f.inlineMax {
		o.Inline = make([]byte, o.Size)
		if _, err := sp.file.ReadAt(o.Inline, 0); err != nil && err != io.EOF {
			return o, fmt.Errorf("spool: %w", err)
		}
	}
	sp.baseLen, sp.have = 0, nil
	if sp.upload != "" {
		f.abortUpload(sp.uploadKey, sp.upload)
		sp.upload = ""
	}
	return o, nil
}

// gaps returns the parts of [lo, hi) not covered by have (sorted, disjoint).
func gaps(have []span, lo, hi int64) []span {
	var out []span
	for _, h := range have {
		if h.hi <= lo {
			continue
		}
		if h.lo >= hi {
			break
		}
		if h.lo > lo {
			out = append(out, span{lo, h.lo})
		}
		lo = max(lo, h.hi)
	}
	if lo < hi {
		out = append(out, span{lo, hi})
	}
	return out
}

// addSpan merges s into the sorted, disjoint list have.
func addSpan(have []span, s span) []span {
	if s.lo >= s.hi {
		return have
	}
	have = append(have, s)
	sort.Slice(have, func(i, j int) bool { return have[i].lo < have[j].lo })
	out := have[:1]
	for _, h := range have[1:] {
		last := &out[len(out)-1]
		if h.lo <= last.hi {
			last.hi = max(last.hi, h.hi)
			continue
		}
		out = append(out, h)
	}
	return out
}

func clipSpans(have []span, size int64) []span {
	var out []span
	for _, h := range have {
		if h.lo >= size {
			break
		}
		out = append(out, span{h.lo, min(h.hi, size)})
	}
	return out
}
