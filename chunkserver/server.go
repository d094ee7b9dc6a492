package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Config configures a Server.
type Config struct {
	// ID is the node's stable id. If empty, the id stored in the disks'
	// node-id files is used, and a random one is created on first start.
	ID   string
	Zone string
	// Disks are the directories shards are stored in, each its own
	// failure domain. Two entries must not be the same directory.
	Disks []string
	// Secret authenticates requests (see clusterauth); empty disables
	// authentication, for development only.
	Secret []byte
	// Logger receives corruption reports and disk failures; nil means
	// slog.Default().
	Logger *slog.Logger

	// ReserveBytes is free space every disk keeps: a shard is placed on a
	// disk only if at least this much stays free after it.
	ReserveBytes int64
	// DiskLimits, if not empty, caps the bytes of shard files each disk
	// may hold, by position in Disks; 0 means no cap. It is for several
	// disks that share one filesystem, and for tests.
	DiskLimits []int64
	// MaxShardSize is the largest shard accepted; 0 means 1 GiB.
	MaxShardSize int64
	// NoSync skips the flushes that make a stored shard durable.
	// Acknowledged shards can then be lost on power failure or kernel
	// crash (not on a process crash). For tests and throwaway clusters.
	NoSync bool
	// SharedFlush, if set, shares the flushes of disks on one filesystem
	// with the other servers in this process given the same SharedFlush.
	SharedFlush *SharedFlush

	// ScrubBandwidth caps the bytes/s the scrubber reads (default
	// DefaultScrubBandwidth); ScrubInterval is how long a full pass
	// should take (default DefaultScrubInterval). See RunScrubber.
	ScrubBandwidth int64
	ScrubInterval  time.Duration
	// ReportCorrupt, if set, is told about the shards the scrubber finds
	// corrupt, so that they get repaired; an error has them offered again.
	ReportCorrupt func(context.Context, []CorruptShard) error

	// For tests and benchmarks in this package.
	blockSize        int64                       // checksum block size; 0 = defaultBlockSize
	ioSize           int                         // I/O buffer size, reads and writes; 0 = the defaults
	syncBeforeRename bool                        // flush the data before the rename too (the old scheme)
	noDirect         bool                        // write shards through the page cache
	directMin        int64                       // smallest shard written with O_DIRECT; 0 = defaultDirectMin
	writeFault       func(diskPath string) error // error to inject before each data write
}

const (
	defaultMaxShardSize = 1 << 30

	// defaultIOSize is the size of the pooled buffer a GET reads the
	// shard into and sends from: one read(2)/write(2) per this many
	// bytes. Larger gains little (see BenchmarkGet) and lets the data
	// fall out of the CPU cache between checksum and send: 1 MiB made
	// GETs through a whole cluster slower.
	defaultIOSize = 256 << 10

	// defaultWriteIOSize is the same for a PUT, whose every direct
	// write is a device request: on a virtual disk 1 MiB cut the CPU
	// per byte of a 64 MiB PUT through a whole cluster by about a tenth
	// against 256 KiB (bench/cpu-ab.sh, bench/RESULTS.md). A large
	// shard's write holds two (see asyncWriter).
	defaultWriteIOSize = 1 << 20

	// tailSize is how much of a file's end a reader fetches at once to get
	// the footer and, for shards up to 64 MiB, the whole checksum table.
	tailSize = 4<<10 + footerSize

	// defaultDirectMin is the smallest shard written with O_DIRECT.
	// Below it direct I/O saves no CPU (creating the file dominates) and
	// keeps freshly written shards out of the page cache. From 1 MiB on
	// it saves CPU and time on a single server, from 16 MiB about half
	// (BenchmarkPutDirect). On a whole cluster it pays from 256 KiB (the
	// shards of a 1 MiB object at 4+2): what is written direct is on the
	// disk already when the group flush runs, so the flush that every
	// concurrent shard write waits for has that much less to write back.
	// bench/cpu-ab.sh put 1MiB 16: 164-172 -> 186-188 MiB/s, 15% less
	// CPU per GiB, GETs of the same objects unchanged.
	defaultDirectMin = 256 << 10

	numStripes = 256
)

// A Server stores shards on local disks and serves them over HTTP.
type Server struct {
	id, zone string
	log      *slog.Logger
	disks    []*disk
	secret   []byte

	reserve          int64
	maxShardSize     int64
	noSync           bool
	syncBeforeRename bool
	noDirect         bool
	directMin        int64
	writeFault       func(string) error
	blockSize        int64
	blockOp          uint32 // crcShift(blockSize)

	bufs    sync.Pool // *ioState
	ioSize  int
	wbufs   sync.Pool // *ioState for writes, of wioSize
	wioSize int
	tmpSeq  atomic.Uint64
	next    atomic.Uint64 // rotates the tie-break order of disk choice
	stripes [numStripes]sync.Mutex
	closed  atomic.Bool

	scrub *scrubber
}

// ioState is the per-request scratch memory, pooled.
type ioState struct {
	buf   []byte // data; len is a multiple of the block size
	tail  [tailSize]byte
	table []byte // checksum table, grown as needed
}

// New opens the disks (creating their layout on first use), removes temp
// files left by writes that crashed, and counts the stored shards, which
// reads every shard directory. A disk that cannot be opened is reported
// unhealthy and unused; New fails if none can be opened, or if a disk is
// in use by another process.
func New(cfg Config) (*Server, error) {
	if len(cfg.Disks) == 0 {
		return nil, errors.New("chunkserver: no disks configured")
	}
	if len(cfg.DiskLimits) > len(cfg.Disks) {
		return nil, errors.New("chunkserver: more DiskLimits than Disks")
	}
	s := &Server{
		id:               cfg.ID,
		zone:             cfg.Zone,
		log:              cfg.Logger,
		secret:           cfg.Secret,
		reserve:          cfg.ReserveBytes,
		maxShardSize:     cfg.MaxShardSize,
		noSync:           cfg.NoSync,
		syncBeforeRename: cfg.syncBeforeRename,
		noDirect:         cfg.noDirect,
		directMin:        cfg.directMin,
		writeFault:       cfg.writeFault,
		blockSize:        cfg.blockSize,
		ioSize:           cfg.ioSize,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxShardSize <= 0 {
		s.maxShardSize = defaultMaxShardSize
	}
	if s.blockSize == 0 {
		s.blockSize = defaultBlockSize
	}
	if s.blockSize < minBlockSize || s.blockSize > maxBlockSize {
		return nil, fmt.Errorf("chunkserver: block size %d out of range", s.blockSize)
	}
	s.wioSize = s.ioSize
	if s.ioSize == 0 {
		s.ioSize, s.wioSize = defaultIOSize, defaultWriteIOSize
	}
	if s.directMin == 0 {
		s.directMin = defaultDirectMin
	}
	s.ioSize = max(1, s.ioSize/int(s.blockSize)) * int(s.blockSize)
	s.wioSize = max(1, s.wioSize/int(s.blockSize)) * int(s.blockSize)
	s.blockOp = crcShift(s.blockSize)
	s.bufs.New = func() any { return &ioState{buf: alignedBuffer(s.ioSize)} }
	s.wbufs.New = func() any { return &ioState{buf: alignedBuffer(s.wioSize)} }
	s.scrub = newScrubber(s, cfg)

	// Disks are opened in parallel: counting the shards reads every
	// directory, which on big disks is the slow part of a start.
	s.disks = make([]*disk, len(cfg.Disks))
	errs := make([]error, len(cfg.Disks))
	var wg sync.WaitGroup
	for i, dir := range cfg.Disks {
		var limit int64
		if i < len(cfg.DiskLimits) {
			limit = cfg.DiskLimits[i]
		}
		wg.Go(func() {
			d, removed, err := openDisk(context.Background(), dir, limit, cfg.SharedFlush)
			s.disks[i], errs[i] = d, err
			if removed > 0 {
				s.log.Info("removed temp files of interrupted writes", "disk", dir, "files", removed)
			}
		})
	}
	wg.Wait()
	opened := 0
	for i, d := range s.disks {
		switch err := errs[i]; {
		case errors.Is(err, errDiskInUse):
			s.Close()
			return nil, fmt.Errorf("chunkserver: %w", err)
		case err != nil:
			err = fmt.Errorf("open disk %s: %w", d.path, err)
			d.fail(err)
			s.log.Error("disk unusable", "disk", d.path, "err", err)
		default:
			opened++
		}
	}
	if opened == 0 {
		s.Close()
		return nil, fmt.Errorf("chunkserver: no usable disk: %w", errors.Join(errs...))
	}
	if s.id == "" {
		id, err := s.nodeID()
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("chunkserver: %w", err)
		}
		s.id = id
	}
	return s, nil
}

// nodeID returns the node id stored on the disks, creating one if none
// has any, and writes it to the disks that lack it, so that the id
// survives the loss of any one disk. Disks that disagree mean disks of
// two nodes were mixed up, which is refused.
func (s *Server) nodeID() (string, error) {
	var id, from string
	var missing []*disk
	for _, d := range s.disks {
		if d.lock == nil {
			continue
		}
		p := filepath.Join(d.path, nodeIDFile)
		got, err := readID(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			missing = append(missing, d)
		case err != nil:
			return "", err
		case id == "":
			id, from = got, d.path
		case got != id:
			return "", fmt.Errorf("disks belong to different nodes: %s has node id %s, %s has %s", from, id, d.path, got)
		}
	}
	if id == "" {
		id = newID()
	}
	for _, d := range missing {
		if err := writeFileAtomic(filepath.Join(d.path, nodeIDFile), []byte(id+"\n")); err != nil {
			return "", fmt.Errorf("store node id: %w", err)
		}
	}
	return id, nil
}

// ID returns the node id.
func (s *Server) ID() string { return s.id }

// Close releases the disks. Call it after the HTTP server has stopped
// serving s.Handler.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	for _, d := range s.disks {
		if d != nil && d.lock != nil {
			errs = append(errs, d.lock.Close())
		}
	}
	return errors.Join(errs...)
}

// Status describes a chunk server and its disks.
type Status struct {
	ID    string       `json:"id"`
	Zone  string       `json:"zone"`
	Disks []DiskStatus `json:"disks"`
}

// DiskStatus describes one disk. Capacity and Free come from the
// filesystem (capped by a configured limit); Used counts only shard files.
type DiskStatus struct {
	ID       string `json:"id"`
	Path     string `json:"path"`
	Capacity uint64 `json:"capacity"`
	Free     uint64 `json:"free"`
	Used     uint64 `json:"used"`
	Shards   int64  `json:"shards"`
	Healthy  bool   `json:"healthy"`
	// Error says why the disk is unhealthy.
	Error string `json:"error,omitempty"`
}

// Status reports the node and the state of each disk.
func (s *Server) Status(ctx context.Context) (Status, error) {
	st := Status{ID: s.id, Zone: s.zone, Disks: make([]DiskStatus, 0, len(s.disks))}
	for _, d := range s.disks {
		if err := ctx.Err(); err != nil {
			return Status{}, err
		}
		ds := DiskStatus{
			ID:      d.id,
			Path:    d.path,
			Used:    uint64(max(0, d.used.Load())),
			Shards:  d.count.Load(),
			Healthy: d.healthy(),
		}
		if p := d.failure.Load(); p != nil {
			ds.Error = (*p).Error()
		}
		if d.lock != nil {
			capacity, free, err := d.space()
			if err != nil {
				ds.Healthy = false
				if ds.Error == "" {
					ds.Error = err.Error()
				}
			}
			ds.Capacity, ds.Free = uint64(capacity), uint64(free)
		}
		st.Disks = append(st.Disks, ds)
	}
	return st, nil
}

// ShardInfo describes one stored shard, as listed by Inventory.
type ShardInfo struct {
	ID   string `json:"id"`
	Disk string `json:"disk"`
	// Size is the shard's length, or -1 if its file has a size no shard
	// can have (a damaged shard).
	Size int64 `json:"size"`
	// MTime is when the shard was written, in unix seconds.
	MTime int64 `json:"mtime"`
}

// Inventory calls fn for every shard on every disk, stopping at the first
// error. Shards written or deleted during the walk may or may not be
// listed. Sizes are derived from file sizes (no file is opened), which
// assumes every shard was written with this server's block size.
func (s *Server) Inventory(ctx context.Context, fn func(ShardInfo) error) error {
	for _, d := range s.disks {
		if d.lock == nil {
			continue
		}
		err := d.walk(ctx, func(id string, size, mtime int64) error {
			return fn(ShardInfo{ID: id, Disk: d.id, Size: dataLenOf(size, s.blockSize), MTime: mtime})
		})
		if err != nil {
			return fmt.Errorf("inventory of %s: %w", d.path, err)
		}
	}
	return nil
}

// alignedBuffer returns n bytes starting at a dioAlign boundary, as
// direct I/O needs.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+dioAlign)
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (dioAlign - 1))
	if off != 0 {
		off = dioAlign - off
	}
	return b[off : off+n : off+n]
}

func (s *Server) getState() *ioState        { return s.bufs.Get().(*ioState) }
func (s *Server) putState(st *ioState)      { s.bufs.Put(st) }
func (s *Server) getWriteState() *ioState   { return s.wbufs.Get().(*ioState) }
func (s *Server) putWriteState(st *ioState) { s.wbufs.Put(st) }

// stripe returns the lock that serializes commits and deletes of id, so
// the shard counters stay exact and a shard never ends up on two disks.
func (s *Server) stripe(id string) *sync.Mutex {
	h := uint32(2166136261) // FNV-1a
	for i := range len(id) {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return &s.stripes[h%numStripes]
}
