package extensions

import (
	"archive/zip"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/arcagent/arcagent/internal/saferead"
	"github.com/arcagent/arcagent/signing"
)

// Limits bound what Extract accepts. Zero fields take the DefaultLimits value.
type Limits struct {
	MaxEntries   int   // entries in the archive (files, directories, links)
	MaxFileSize  int64 // uncompressed bytes of one file
	MaxTotalSize int64 // uncompressed bytes of all files
	// MaxRatio is the largest uncompressed:compressed ratio accepted for an
	// entry, or for the whole archive, once it is larger than RatioFloor.
	MaxRatio   int64
	RatioFloor int64
	MaxPathLen int // bytes of one entry name
	MaxDepth   int // path components of one entry name
}

// DefaultLimits are generous for real extensions and tight for zip bombs:
// 10 000 entries, 512 MiB per file, 1 GiB in total, ratio 200:1 above 1 MiB.
func DefaultLimits() Limits {
	return Limits{
		MaxEntries:   10000,
		MaxFileSize:  512 << 20,
		MaxTotalSize: 1 << 30,
		MaxRatio:     200,
		RatioFloor:   1 << 20,
		MaxPathLen:   1024,
		MaxDepth:     32,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = d.MaxTotalSize
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.RatioFloor <= 0 {
		l.RatioFloor = d.RatioFloor
	}
	if l.MaxPathLen <= 0 {
		l.MaxPathLen = d.MaxPathLen
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	return l
}

// Entry types of a FileRecord.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// FileRecord is one extracted path and what it held.
type FileRecord struct {
	Path   string `json:"path"` // slash-separated, relative to the tree
	Type   string `json:"type"` // file, dir or symlink
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Exec   bool   `json:"exec,omitempty"`
	Target string `json:"target,omitempty"` // symlink target
}

const maxLinkTarget = 4096

type planned struct {
	f    *zip.File
	name string // clean, no trailing slash
	typ  string
	exec bool
	// target is a link's target as read and checked during planning: the
	// link is made from it, never from a second read of the archive.
	target string
}

func unsafeErr(entry, format string, args ...any) error {
	return fail(CodeUnsafeArchive, &UnsafeEntryError{Entry: entry, Reason: fmt.Sprintf(format, args...)}, "archive refused")
}

// Extract extracts the zip at zipPath into dest, which must not exist. It
// checks every rule before writing anything, extracts into a temporary
// directory beside dest and renames it into place, so dest appears complete
// or not at all. It returns the records of every path in the tree, sorted.
func Extract(ctx context.Context, zipPath, dest string, lim Limits) ([]FileRecord, error) {
	if _, err := os.Lstat(dest); err == nil {
		return nil, fail(CodeAlreadyInstalled, nil, "%s exists", dest)
	}
	f, err := saferead.OpenFile(zipPath) // a FIFO or device is refused, never waited on
	if err != nil {
		return nil, fail(signing.CodeFileAccess, err, "open archive")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fail(signing.CodeFileAccess, err, "inspect archive")
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".extract-*")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory beside %s: %w", dest, err)
	}
	recs, err := ExtractReader(ctx, f, fi.Size(), tmp, lim)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, dest); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("move the extracted tree to %s: %w", dest, err)
	}
	return recs, nil
}

// ExtractReader extracts a zip read from r (size bytes) into dir, an
// existing empty directory. On error dir may hold part of the archive (but
// nothing was written outside it); callers remove it.
func ExtractReader(ctx context.Context, r io.ReaderAt, size int64, dir string, lim Limits) ([]FileRecord, error) {
	lim = lim.withDefaults()
	plan, err := planExtraction(r, size, lim)
	if err != nil {
		return nil, err
	}
	return extractPlan(ctx, plan, dir, lim)
}

// extractPlan writes a checked plan (planExtraction) into dir.
func extractPlan(ctx context.Context, plan []planned, dir string, lim Limits) ([]FileRecord, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	defer root.Close()

	recs := map[string]FileRecord{}
	// addDirs creates the parents of name (0755 whatever the umask) and
	// records them.
	addDirs := func(name string) error {
		p := path.Dir(name)
		if p == "." {
			return nil
		}
		if err := root.MkdirAll(p, 0o755); err != nil {
			return err
		}
		for d := p; d != "."; d = path.Dir(d) {
			if _, ok := recs[d]; ok {
				break
			}
			recs[d] = FileRecord{Path: d, Type: TypeDir}
			if err := root.Chmod(d, 0o755); err != nil {
				return err
			}
		}
		return nil
	}
	var total int64
	buf := make([]byte, 32<<10)
	var links []planned
	for _, p := range plan {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		switch p.typ {
		case TypeDir:
			if err := addDirs(p.name); err != nil {
				return nil, fmt.Errorf("create %s: %w", p.name, err)
			}
			if err := root.Mkdir(p.name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("create %s: %w", p.name, err)
			}
			if err := root.Chmod(p.name, 0o755); err != nil {
				return nil, err
			}
			recs[p.name] = FileRecord{Path: p.name, Type: TypeDir}
		case TypeSymlink:
			links = append(links, p)
		case TypeFile:
			if err := addDirs(p.name); err != nil {
				return nil, fmt.Errorf("create directory for %s: %w", p.name, err)
			}
			rec, err := extractFile(root, p, lim, &total, buf)
			if err != nil {
				return nil, err
			}
			recs[p.name] = rec
		}
	}
	for _, p := range links {
		if err := addDirs(p.name); err != nil {
			return nil, fmt.Errorf("create directory for %s: %w", p.name, err)
		}
		if err := root.Symlink(p.target, p.name); err != nil {
			return nil, fmt.Errorf("create link %s: %w", p.name, err)
		}
		recs[p.name] = FileRecord{Path: p.name, Type: TypeSymlink, Target: p.target}
	}
	out := make([]FileRecord, 0, len(recs))
	for _, r := range recs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b FileRecord) int { return cmp.Compare(a.Path, b.Path) })
	return out, nil
}

func extractFile(root *os.Root, p planned, lim Limits, total *int64, buf []byte) (FileRecord, error) {
	mode := fs.FileMode(0o644)
	if p.exec {
		mode = 0o755
	}
	rc, err := p.f.Open()
	if err != nil {
		return FileRecord{}, unsafeErr(p.f.Name, "cannot be read: %v", err)
	}
	defer rc.Close()
	out, err := root.OpenFile(p.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return FileRecord{}, fmt.Errorf("create %s: %w", p.name, err)
	}
	defer out.Close()
	h := sha256.New()
	declared := int64(p.f.UncompressedSize64)
	n, err := io.CopyBuffer(io.MultiWriter(out, h), io.LimitReader(rc, declared+1), buf)
	if err != nil {
		return FileRecord{}, unsafeErr(p.f.Name, "cannot be decompressed: %v", err)
	}
	if n != declared {
		return FileRecord{}, unsafeErr(p.f.Name, "holds %d bytes but its header says %d", n, declared)
	}
	*total += n
	if n > lim.MaxFileSize || *total > lim.MaxTotalSize {
		return FileRecord{}, unsafeErr(p.f.Name, "size over the limit")
	}
	if err := out.Chmod(mode); err != nil {
		return FileRecord{}, err
	}
	if err := out.Close(); err != nil {
		return FileRecord{}, fmt.Errorf("write %s: %w", p.name, err)
	}
	return FileRecord{Path: p.name, Type: TypeFile, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Exec: p.exec}, nil
}

func readLinkTarget(f *zip.File) (string, error) {
	if f.UncompressedSize64 > maxLinkTarget {
		return "", unsafeErr(f.Name, "link target longer than %d bytes", maxLinkTarget)
	}
	rc, err := f.Open()
	if err != nil {
		return "", unsafeErr(f.Name, "cannot be read: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
	if err != nil {
		return "", unsafeErr(f.Name, "cannot be read: %v", err)
	}
	if len(b) > maxLinkTarget {
		return "", unsafeErr(f.Name, "link target longer than %d bytes", maxLinkTarget)
	}
	return string(b), nil
}

// checkName returns the clean entry name or why it is refused.
func checkName(name string, lim Limits) (clean string, dir bool, err error) {
	dir = strings.HasSuffix(name, "/")
	n := strings.TrimSuffix(name, "/")
	switch {
	case n == "":
		return "", dir, unsafeErr(name, "empty name")
	case len(name) > lim.MaxPathLen:
		return "", dir, unsafeErr(name, "name longer than %d bytes", lim.MaxPathLen)
	case !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\\:"):
		return "", dir, unsafeErr(name, "name holds a NUL, backslash, colon or invalid UTF-8")
	case strings.HasPrefix(n, "/"):
		return "", dir, unsafeErr(name, "absolute path")
	}
	parts := strings.Split(n, "/")
	if len(parts) > lim.MaxDepth {
		return "", dir, unsafeErr(name, "more than %d path components", lim.MaxDepth)
	}
	for _, c := range parts {
		switch c {
		case "..":
			return "", dir, unsafeErr(name, "path climbs out of the tree with ..")
		case "", ".":
			return "", dir, unsafeErr(name, "path is not canonical (empty or . component)")
		}
		for _, r := range c {
			if r < 0x20 || r == 0x7f {
				return "", dir, unsafeErr(name, "name holds a control character")
			}
		}
	}
	return n, dir, nil
}

// planExtraction checks every rule on the central directory before anything
// is written, and returns the entries in extraction order.
func planExtraction(r io.ReaderAt, size int64, lim Limits) ([]planned, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, unsafeErr("", "not a readable zip archive: %v", err)
	}
	if zr == nil {
		return nil, unsafeErr("", "not a readable zip archive")
	}
	if len(zr.File) > lim.MaxEntries {
		return nil, unsafeErr("", "archive has %d entries, more than the limit of %d", len(zr.File), lim.MaxEntries)
	}
	if err := checkOverlaps(r, size, zr.File); err != nil {
		return nil, err
	}
	var plan []planned
	seen := map[string]string{} // lower-case name → type
	var total uint64
	for _, f := range zr.File {
		name, isDir, err := checkName(f.Name, lim)
		if err != nil {
			return nil, err
		}
		if f.Flags&0x1 != 0 {
			return nil, unsafeErr(f.Name, "encrypted entries are not supported")
		}
		m := f.Mode()
		p := planned{f: f, name: name}
		switch {
		case m.IsDir() || isDir:
			if !m.IsDir() && m.Type() != 0 {
				return nil, unsafeErr(f.Name, "special file named like a directory")
			}
			p.typ = TypeDir
		case m&fs.ModeSymlink != 0:
			p.typ = TypeSymlink
		case m.IsRegular():
			p.typ = TypeFile
			p.exec = m.Perm()&0o111 != 0
		default:
			return nil, unsafeErr(f.Name, "device, pipe, socket or other special file (mode %s)", m)
		}
		if p.typ != TypeDir && f.Method != zip.Store && f.Method != zip.Deflate {
			return nil, unsafeErr(f.Name, "compression method %d is not supported (use store or deflate)", f.Method)
		}
		key := strings.ToLower(name)
		if _, dup := seen[key]; dup {
			return nil, unsafeErr(f.Name, "duplicate entry (names are compared without case)")
		}
		seen[key] = p.typ
		if p.typ == TypeSymlink && f.UncompressedSize64 > maxLinkTarget {
			return nil, unsafeErr(f.Name, "link target longer than %d bytes", maxLinkTarget)
		}
		u := f.UncompressedSize64
		if p.typ == TypeFile && u > uint64(lim.MaxFileSize) {
			return nil, unsafeErr(f.Name, "%d bytes uncompressed, more than the per-file limit of %d", u, lim.MaxFileSize)
		}
		total += u
		if total > uint64(lim.MaxTotalSize) {
			return nil, unsafeErr(f.Name, "archive expands to more than the total limit of %d bytes", lim.MaxTotalSize)
		}
		if u > uint64(lim.RatioFloor) && (f.CompressedSize64 == 0 || u/f.CompressedSize64 > uint64(lim.MaxRatio)) {
			return nil, unsafeErr(f.Name, "compression ratio over %d:1 (zip bomb?)", lim.MaxRatio)
		}
		plan = append(plan, p)
	}
	// The whole archive's ratio is taken against its size on disk, not the
	// sum of the entries' compressed sizes, which entries sharing bytes
	// would inflate.
	if total > uint64(lim.RatioFloor) && (size <= 0 || total/uint64(size) > uint64(lim.MaxRatio)) {
		return nil, unsafeErr("", "archive expands to %d bytes from %d, a ratio over %d:1 (zip bomb?)", total, size, lim.MaxRatio)
	}
	// No entry may live under a file or a link: writes never pass through
	// a link, whatever order the entries come in.
	for _, p := range plan {
		for d := path.Dir(p.name); d != "."; d = path.Dir(d) {
			if t, ok := seen[strings.ToLower(d)]; ok && t != TypeDir {
				return nil, unsafeErr(p.f.Name, "lies under %s, which is a %s", d, t)
			}
		}
	}
	for i := range plan {
		p := &plan[i]
		if p.typ != TypeSymlink {
			continue
		}
		target, err := readLinkTarget(p.f)
		if err != nil {
			return nil, err
		}
		if err := checkLinkTarget(p.name, target, seen); err != nil {
			return nil, err
		}
		p.target = target
	}
	return plan, nil
}

// checkLinkTarget accepts a relative target that resolves inside the tree
// without passing through another link.
func checkLinkTarget(name, target string, seen map[string]string) error {
	switch {
	case target == "":
		return unsafeErr(name, "empty link target")
	case strings.HasPrefix(target, "/"):
		return unsafeErr(name, "link to an absolute path (%s) leaves the tree", target)
	case strings.ContainsAny(target, "\x00\\"):
		return unsafeErr(name, "link target holds a NUL or backslash")
	}
	var stack []string
	if d := path.Dir(name); d != "." {
		stack = strings.Split(d, "/")
	}
	parts := strings.Split(target, "/")
	for i, c := range parts {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return unsafeErr(name, "link target %s leaves the tree", target)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		if i < len(parts)-1 {
			if t := seen[strings.ToLower(strings.Join(stack, "/"))]; t == TypeSymlink {
				return unsafeErr(name, "link target %s passes through another link", target)
			}
		}
	}
	if len(stack) == 0 {
		return nil // the tree's root itself
	}
	if strings.Join(stack, "/") == name {
		return unsafeErr(name, "link points to itself")
	}
	return nil
}
