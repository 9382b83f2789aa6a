package extensions

import (
	"archive/zip"
	"bytes"
	"cmp"
	"encoding/binary"
	"io"
	"slices"
)

// Record signatures and sizes of the zip format (APPNOTE.TXT 4.3).
const (
	sigCentral      = 0x02014b50
	sigEnd          = 0x06054b50
	sigEnd64        = 0x06064b50
	sigEnd64Locator = 0x07064b50
	centralLen      = 46
	endLen          = 22
	end64Len        = 56
	end64LocLen     = 20
	maxCommentLen   = 0xffff
)

// span is the bytes of one entry in the archive: its local header through
// the end of its compressed data.
type span struct {
	name       string
	start, end int64
}

// checkOverlaps refuses an archive in which two entries share bytes (the
// overlapping-entry zip bomb: many central-directory entries pointing at one
// deflate stream) or in which an entry's data runs past the end of the file.
// files are the entries archive/zip parsed from r; their local header
// offsets are read from the central directory again, since archive/zip does
// not expose them.
func checkOverlaps(r io.ReaderAt, size int64, files []*zip.File) error {
	if len(files) == 0 {
		return nil
	}
	offsets, err := localHeaderOffsets(r, size, files)
	if err != nil {
		return err
	}
	spans := make([]span, len(files))
	for i, f := range files {
		data, err := f.DataOffset()
		if err != nil {
			return unsafeErr(f.Name, "local header cannot be read: %v", err)
		}
		end := data + int64(f.CompressedSize64)
		if offsets[i] < 0 || data < offsets[i] || f.CompressedSize64 > uint64(size) || end > size {
			return unsafeErr(f.Name, "data runs past the end of the archive")
		}
		spans[i] = span{name: f.Name, start: offsets[i], end: end}
	}
	slices.SortFunc(spans, func(a, b span) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
	})
	prev := spans[0]
	for _, s := range spans[1:] {
		if s.start < prev.end {
			return unsafeErr(s.name, "overlaps entry %q in the archive: entries share compressed bytes (overlapping-entry zip bomb?)", prev.name)
		}
		if s.end > prev.end {
			prev = s
		}
	}
	return nil
}

// localHeaderOffsets reads the local header offset of every entry from the
// central directory, checking each record against the entry archive/zip
// parsed (same name, same order). An archive that cannot be read this way
// (for example one with data before its first entry) is refused: fail
// closed.
func localHeaderOffsets(r io.ReaderAt, size int64, files []*zip.File) ([]int64, error) {
	le := binary.LittleEndian
	tailLen := min(size, endLen+maxCommentLen)
	tail := make([]byte, tailLen)
	if _, err := r.ReadAt(tail, size-tailLen); err != nil && err != io.EOF {
		return nil, unsafeErr("", "cannot read the end of the archive: %v", err)
	}
	i := bytes.LastIndex(tail, []byte("PK\x05\x06"))
	for i >= 0 && i+endLen > len(tail) {
		i = bytes.LastIndex(tail[:i], []byte("PK\x05\x06"))
	}
	if i < 0 {
		return nil, unsafeErr("", "no end of central directory record")
	}
	end := tail[i:]
	endPos := size - tailLen + int64(i)
	cdOff := int64(le.Uint32(end[16:]))
	if le.Uint16(end[10:]) == 0xffff || le.Uint32(end[12:]) == 0xffffffff || cdOff == 0xffffffff {
		// Zip64: the locator sits just before the classic record.
		loc := make([]byte, end64LocLen)
		if endPos < end64LocLen {
			return nil, unsafeErr("", "zip64 locator missing")
		}
		if _, err := r.ReadAt(loc, endPos-end64LocLen); err != nil || le.Uint32(loc) != sigEnd64Locator {
			return nil, unsafeErr("", "zip64 locator missing")
		}
		e64 := make([]byte, end64Len)
		p := int64(le.Uint64(loc[8:]))
		if p < 0 || p > size-end64Len {
			return nil, unsafeErr("", "zip64 end record outside the archive")
		}
		if _, err := r.ReadAt(e64, p); err != nil || le.Uint32(e64) != sigEnd64 {
			return nil, unsafeErr("", "zip64 end record missing")
		}
		cdOff = int64(le.Uint64(e64[48:]))
	}
	if cdOff < 0 || cdOff >= size {
		return nil, unsafeErr("", "central directory outside the archive")
	}
	out := make([]int64, len(files))
	pos := cdOff
	hdr := make([]byte, centralLen)
	for k, f := range files {
		if pos > size-centralLen {
			return nil, unsafeErr(f.Name, "central directory record outside the archive")
		}
		if _, err := r.ReadAt(hdr, pos); err != nil || le.Uint32(hdr) != sigCentral {
			return nil, unsafeErr(f.Name, "central directory record not where the archive says (data before the first entry is not supported)")
		}
		nameLen, extraLen, commentLen := int64(le.Uint16(hdr[28:])), int64(le.Uint16(hdr[30:])), int64(le.Uint16(hdr[32:]))
		if pos+centralLen+nameLen+extraLen > size {
			return nil, unsafeErr(f.Name, "central directory record outside the archive")
		}
		rest := make([]byte, nameLen+extraLen)
		if _, err := r.ReadAt(rest, pos+centralLen); err != nil {
			return nil, unsafeErr(f.Name, "central directory record cannot be read: %v", err)
		}
		if string(rest[:nameLen]) != f.Name {
			return nil, unsafeErr(f.Name, "central directory record names %q", rest[:nameLen])
		}
		off := int64(le.Uint32(hdr[42:]))
		if off == 0xffffffff {
			off = zip64Offset(rest[nameLen:], le.Uint32(hdr[24:]) == 0xffffffff, le.Uint32(hdr[20:]) == 0xffffffff)
		}
		out[k] = off
		pos += centralLen + nameLen + extraLen + commentLen
	}
	return out, nil
}

// zip64Offset returns the local header offset from a zip64 extra field
// (tag 1), whose 8-byte fields come in the order uncompressed size,
// compressed size, offset, each present only when its 32-bit field is
// 0xffffffff; -1 when it is absent.
func zip64Offset(extra []byte, hasUncompressed, hasCompressed bool) int64 {
	le := binary.LittleEndian
	for len(extra) >= 4 {
		tag, n := le.Uint16(extra), int(le.Uint16(extra[2:]))
		if 4+n > len(extra) {
			return -1
		}
		field := extra[4 : 4+n]
		extra = extra[4+n:]
		if tag != 1 {
			continue
		}
		skip := 0
		if hasUncompressed {
			skip += 8
		}
		if hasCompressed {
			skip += 8
		}
		if len(field) < skip+8 {
			return -1
		}
		return int64(le.Uint64(field[skip:]))
	}
	return -1
}
