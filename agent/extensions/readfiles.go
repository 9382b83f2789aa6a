package extensions

import (
	"context"
	"io"
)

// ArchiveFile is one regular file of an archive read into memory.
type ArchiveFile struct {
	Data []byte
	Exec bool
}

// ReadFiles reads the regular files of a zip archive (size bytes from r)
// into memory, by clean slash-separated name, after every rule Extract
// applies (names, entry types, overlap, per-file, total and ratio limits,
// declared sizes). Links are refused: a package read into memory has no
// tree for them to point into. For small packages (guest configuration)
// whose content is never written out as a tree.
func ReadFiles(ctx context.Context, r io.ReaderAt, size int64, lim Limits) (map[string]ArchiveFile, error) {
	lim = lim.withDefaults()
	plan, err := planExtraction(r, size, lim)
	if err != nil {
		return nil, err
	}
	out := make(map[string]ArchiveFile, len(plan))
	var total int64
	for _, p := range plan {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		switch p.typ {
		case TypeDir:
			continue
		case TypeSymlink:
			return nil, unsafeErr(p.f.Name, "symbolic links are not allowed in this package")
		}
		rc, err := p.f.Open()
		if err != nil {
			return nil, unsafeErr(p.f.Name, "cannot be read: %v", err)
		}
		declared := int64(p.f.UncompressedSize64)
		b, err := io.ReadAll(io.LimitReader(rc, declared+1))
		rc.Close()
		if err != nil {
			return nil, unsafeErr(p.f.Name, "cannot be decompressed: %v", err)
		}
		if int64(len(b)) != declared {
			return nil, unsafeErr(p.f.Name, "holds %d bytes but its header says %d", len(b), declared)
		}
		total += declared
		if total > lim.MaxTotalSize {
			return nil, unsafeErr(p.f.Name, "size over the limit")
		}
		out[p.name] = ArchiveFile{Data: b, Exec: p.exec}
	}
	return out, nil
}
