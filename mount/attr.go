package mount

import (
	"maps"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/talusfs/talus/meta/metaapi"
)

// POSIX attributes live in the object record's Meta map under the S3
// user-metadata names that s3fs, rclone and goofys use (the gateway keeps user
// metadata under its lower-case header name), so that those tools and this
// mount read each other's files.
const (
	metaMode  = "x-amz-meta-mode"  // st_mode, type bits included, decimal (s3fs); octal with a leading 0 is read too (rclone)
	metaUID   = "x-amz-meta-uid"   // decimal
	metaGID   = "x-amz-meta-gid"   // decimal
	metaMtime = "x-amz-meta-mtime" // seconds since the epoch, optionally ".nnnnnnnnn"
	metaCtime = "x-amz-meta-ctime"
	metaAtime = "x-amz-meta-atime"
	metaRdev  = "x-amz-meta-rdev" // device number of character and block special files

	// dirContentType marks directory marker objects ("dir/"), as s3fs does.
	dirContentType = "application/x-directory"
)

// kind is what a node is; it never changes for the life of a node (a name
// whose object changes kind gets a new node).
type kind uint8

const (
	kindFile    kind = iota // regular file
	kindDir                 // directory: a marker object "dir/" and/or keys below "dir/"
	kindSymlink             // the object's body is the target, its mode has S_IFLNK
	kindSpecial             // FIFO, socket or device: an empty object whose mode says which
)

// typeBits is the S_IFMT part of a mode for a kind.
func (k kind) typeBits(mode uint32) uint32 {
	switch k {
	case kindDir:
		return syscall.S_IFDIR
	case kindSymlink:
		return syscall.S_IFLNK
	case kindSpecial:
		return mode & syscall.S_IFMT
	}
	return syscall.S_IFREG
}

// objectKind classifies a non-marker object by the type bits of its mode.
func objectKind(o metaapi.Object) kind {
	m, _ := parseUint(o.Meta[metaMode])
	switch m & syscall.S_IFMT {
	case syscall.S_IFLNK:
		return kindSymlink
	case syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
		return kindSpecial
	}
	return kindFile
}

// attrs are a node's POSIX attributes.
type attrs struct {
	mode                uint32 // type and permission bits
	uid, gid            uint32
	size                int64
	mtime, ctime, atime time.Time
	rdev                uint32
	etag                string
	ctype               string
	// meta is the record's whole Meta map, so that rewriting the POSIX keys
	// keeps whatever else S3 clients stored.
	meta map[string]string
}

// defaults are what objects without POSIX metadata look like.
type defaults struct {
	uid, gid          uint32
	fileMode, dirMode uint32
}

// attrsOf reads the attributes of an object record; k says whether it is a
// directory marker (or, with a zero record, an implicit directory).
func attrsOf(o metaapi.Object, k kind, def defaults) attrs {
	a := attrs{
		uid: def.uid, gid: def.gid,
		size: o.Size, etag: o.ETag, ctype: o.ContentType, meta: o.Meta,
		mtime: o.Modified,
	}
	perm := def.fileMode
	if k == kindDir {
		perm = def.dirMode
		a.size = 4096
	}
	mode := perm
	if v, ok := o.Meta[metaMode]; ok {
		if m, err := strconv.ParseUint(strings.TrimSpace(v), 0, 32); err == nil {
			mode = uint32(m)
		}
	}
	if k != kindDir && mode&syscall.S_IFMT == syscall.S_IFDIR {
		// An object without the trailing slash is never a directory here.
		mode &^= syscall.S_IFMT
	}
	a.mode = k.typeBits(mode) | mode&07777
	if v, ok := parseUint(o.Meta[metaUID]); ok {
		a.uid = v
	}
	if v, ok := parseUint(o.Meta[metaGID]); ok {
		a.gid = v
	}
	if v, ok := parseUint(o.Meta[metaRdev]); ok {
		a.rdev = v
	}
	if t, ok := parseTime(o.Meta[metaMtime]); ok {
		a.mtime = t
	}
	a.ctime, a.atime = a.mtime, a.mtime
	if t, ok := parseTime(o.Meta[metaCtime]); ok {
		a.ctime = t
	}
	if t, ok := parseTime(o.Meta[metaAtime]); ok {
		a.atime = t
	}
	return a
}

// encode returns the record's Meta map with the POSIX keys set from a.
func (a *attrs) encode() map[string]string {
	m := maps.Clone(a.meta)
	if m == nil {
		m = make(map[string]string, 6)
	}
	m[metaMode] = strconv.FormatUint(uint64(a.mode), 10)
	m[metaUID] = strconv.FormatUint(uint64(a.uid), 10)
	m[metaGID] = strconv.FormatUint(uint64(a.gid), 10)
	m[metaMtime] = formatTime(a.mtime)
	m[metaCtime] = formatTime(a.ctime)
	if !a.atime.IsZero() && !a.atime.Equal(a.mtime) {
		m[metaAtime] = formatTime(a.atime)
	} else {
		delete(m, metaAtime)
	}
	if a.rdev != 0 {
		m[metaRdev] = strconv.FormatUint(uint64(a.rdev), 10)
	}
	return m
}

// fill copies a into a FUSE attribute block.
func (a *attrs) fill(out *fuse.Attr) {
	out.Mode = a.mode
	out.Uid, out.Gid = a.uid, a.gid
	out.Size = uint64(max(a.size, 0))
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 1 << 20
	out.Nlink = 1 // directories too: subdirectories are not counted (find then does not guess from it)
	out.Rdev = a.rdev
	setTime := func(t time.Time, sec *uint64, nsec *uint32) {
		if t.IsZero() {
			return
		}
		*sec, *nsec = uint64(t.Unix()), uint32(t.Nanosecond())
	}
	setTime(a.mtime, &out.Mtime, &out.Mtimensec)
	setTime(a.ctime, &out.Ctime, &out.Ctimensec)
	setTime(a.atime, &out.Atime, &out.Atimensec)
}

func parseUint(s string) (uint32, bool) {
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), 0, 32)
	return uint32(v), err == nil
}

// formatTime writes a time as s3fs does: whole seconds, and nanoseconds after
// a dot when there are any.
func formatTime(t time.Time) string {
	if t.Nanosecond() == 0 {
		return strconv.FormatInt(t.Unix(), 10)
	}
	return strconv.FormatInt(t.Unix(), 10) + "." + leftPad(strconv.Itoa(t.Nanosecond()), 9)
}

// parseTime reads "seconds[.fraction]" (s3fs, rclone).
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	secs, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var nsec int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		n, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		nsec = n
	}
	return time.Unix(sec, nsec), true
}

func leftPad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat("0", n-len(s)) + s
}
