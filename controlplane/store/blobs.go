package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

// PackageChunkSize is how many bytes of a published package one row of
// package_chunks holds (the last chunk of a package is shorter). A
// download holds one chunk in memory at a time.
const PackageChunkSize = 1 << 20

// ErrBlobCorrupt is a stored package whose bytes no longer match their
// digest (or their recorded size): they are refused, never served.
var ErrBlobCorrupt = errors.New("the stored package bytes do not match their digest")

// ErrBlobMismatch is bytes given to CreatePackageWithBlob or AddPackageBlob
// that are not the package they are stored as (another digest or size).
var ErrBlobMismatch = errors.New("the package bytes do not have the digest and size they are stored under")

// PackageBlobs keeps the bytes and the signature envelope of published
// packages in the database, so that every replica serves every package.
// The bytes are stored in chunks (PackageChunkSize) with a digest each:
// reads stream with bounded memory and verify what they return.
type PackageBlobs interface {
	// CreatePackageWithBlob records a published package, its envelope and
	// its bytes (read from data, which must have p.SHA256 and p.Size) in
	// one transaction. It fails with ErrConflict when the name, the digest
	// or the blob is taken, and with ErrBlobMismatch (nothing stored) when
	// data is not the package.
	CreatePackageWithBlob(ctx context.Context, p Package, envelope []byte, data io.Reader) error
	// AddPackageBlob stores the bytes and envelope of digest sha (a
	// package recorded before its bytes moved into the database). It
	// reports false, storing nothing, when the digest has a blob already.
	AddPackageBlob(ctx context.Context, sha string, size int64, envelope []byte, data io.Reader) (bool, error)
	// PackagesWithoutBlob lists the packages whose bytes are not in the
	// database (published by a server that kept them in files only).
	PackagesWithoutBlob(ctx context.Context) ([]Package, error)
	// PackageEnvelope returns the signature envelope of digest sha
	// (ErrNotFound when the digest has no blob).
	PackageEnvelope(ctx context.Context, sha string) ([]byte, error)
	// OpenPackageBlob opens the bytes of digest sha for reading
	// (ErrNotFound when the digest has no blob).
	OpenPackageBlob(ctx context.Context, sha string) (*BlobReader, error)
}

var _ PackageBlobs = (*DB)(nil)

// CreatePackageWithBlob records a published package with its bytes and
// envelope in one transaction.
func (s *DB) CreatePackageWithBlob(ctx context.Context, p Package, envelope []byte, data io.Reader) error {
	if p.Kind == "" {
		p.Kind = KindExtension
	}
	name := p.Publisher + "." + p.Type + "-" + p.Version
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store package %s: %w", name, err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO packages (publisher, type, version, name_key, sha256, size, key_id, published_at, published_by, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.Publisher, p.Type, p.Version, PackageKey(p.Publisher, p.Type, p.Version), p.SHA256, p.Size, p.KeyID, ms(p.PublishedAt), p.PublishedBy, p.Kind)
	if isUnique(err) {
		return fmt.Errorf("package %s (sha256 %s): %w", name, p.SHA256, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store package %s: %w", name, err)
	}
	added, err := insertBlob(ctx, tx, p.SHA256, p.Size, envelope, data)
	if err != nil {
		return fmt.Errorf("store the bytes of package %s: %w", name, err)
	}
	if !added {
		return fmt.Errorf("the bytes of package %s (sha256 %s): %w", name, p.SHA256, ErrConflict)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store package %s: %w", name, err)
	}
	return nil
}

// AddPackageBlob stores the bytes and envelope of a recorded package.
func (s *DB) AddPackageBlob(ctx context.Context, sha string, size int64, envelope []byte, data io.Reader) (bool, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store the bytes of package %s: %w", sha, err)
	}
	defer tx.Rollback()
	added, err := insertBlob(ctx, tx, sha, size, envelope, data)
	if err != nil || !added {
		if err != nil {
			err = fmt.Errorf("store the bytes of package %s: %w", sha, err)
		}
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store the bytes of package %s: %w", sha, err)
	}
	return true, nil
}

// insertBlob writes the package_files row of sha and its chunks, read
// from data, checking the digest and size before the caller commits. It
// reports false, writing nothing, when sha has a row already (a
// concurrent writer on PostgreSQL waits for the first one's commit, then
// finds the row).
func insertBlob(ctx context.Context, tx *sql.Tx, sha string, size int64, envelope []byte, data io.Reader) (bool, error) {
	if size <= 0 || len(envelope) == 0 {
		return false, fmt.Errorf("%w: size %d, envelope of %d bytes", ErrBlobMismatch, size, len(envelope))
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO package_files (sha256, size, chunk_size, envelope) VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING`,
		sha, size, PackageChunkSize, envelope)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO package_chunks (sha256, seq, chunk_sha256, data) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return false, err
	}
	defer st.Close()
	h := sha256.New()
	buf := make([]byte, PackageChunkSize)
	var n int64
	for seq := 0; ; seq++ {
		k, rerr := io.ReadFull(data, buf)
		if k > 0 {
			n += int64(k)
			if n > size {
				return false, fmt.Errorf("%w: more than %d bytes", ErrBlobMismatch, size)
			}
			chunk := buf[:k]
			h.Write(chunk)
			cs := sha256.Sum256(chunk)
			if _, err := st.ExecContext(ctx, sha, seq, hex.EncodeToString(cs[:]), chunk); err != nil {
				return false, err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return false, fmt.Errorf("read the package bytes: %w", rerr)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != sha {
		return false, fmt.Errorf("%w: %d bytes with sha256 %s, want %d bytes with sha256 %s", ErrBlobMismatch, n, got, size, sha)
	}
	return true, nil
}

// PackagesWithoutBlob lists the packages whose bytes are not in the
// database.
func (s *DB) PackagesWithoutBlob(ctx context.Context) ([]Package, error) {
	rows, err := s.r.QueryContext(ctx, pkgSelect+` WHERE NOT EXISTS (SELECT 1 FROM package_files f WHERE f.sha256 = packages.sha256) ORDER BY published_at, sha256`)
	if err != nil {
		return nil, fmt.Errorf("list packages without stored bytes: %w", err)
	}
	defer rows.Close()
	var out []Package
	for rows.Next() {
		p, err := scanPackage(rows)
		if err != nil {
			return nil, fmt.Errorf("list packages without stored bytes: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PackageEnvelope returns the signature envelope of digest sha.
func (s *DB) PackageEnvelope(ctx context.Context, sha string) ([]byte, error) {
	var env []byte
	err := s.r.QueryRowContext(ctx, `SELECT envelope FROM package_files WHERE sha256 = ?`, sha).Scan(&env)
	if err != nil {
		return nil, notFound(err, "the signature of package "+sha)
	}
	return env, nil
}

// OpenPackageBlob opens the bytes of digest sha for reading.
func (s *DB) OpenPackageBlob(ctx context.Context, sha string) (*BlobReader, error) {
	b := &BlobReader{ctx: ctx, db: s.r, sha: sha, cur: -1, h: sha256.New()}
	var chunk int64
	err := s.r.QueryRowContext(ctx, `SELECT size, chunk_size FROM package_files WHERE sha256 = ?`, sha).Scan(&b.size, &chunk)
	if err != nil {
		return nil, notFound(err, "the bytes of package "+sha)
	}
	if b.size <= 0 || chunk <= 0 || chunk > 64<<20 {
		return nil, fmt.Errorf("package %s: size %d in chunks of %d: %w", sha, b.size, chunk, ErrBlobCorrupt)
	}
	b.chunk = chunk
	return b, nil
}

// BlobReader reads a stored package, one chunk in memory at a time. It is
// an io.ReadSeeker (for http.ServeContent, which answers Range requests
// with Seek). Every chunk is checked against its own digest before any of
// its bytes are returned; a read from the start that reaches the last
// chunk also checks the digest of the whole package before returning the
// last chunk's bytes, so that a complete read never yields bytes other
// than the package's. A failed check is ErrBlobCorrupt.
type BlobReader struct {
	ctx   context.Context
	db    *sql.DB
	sha   string
	size  int64
	chunk int64

	pos  int64
	cur  int64 // index of buf's chunk, -1 for none
	buf  []byte
	h    hash.Hash
	hnum int64 // chunks hashed into h, in order from chunk 0
}

// Size is the package's size in bytes.
func (b *BlobReader) Size() int64 { return b.size }

// Seek sets the offset of the next Read.
func (b *BlobReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.pos
	case io.SeekEnd:
		offset += b.size
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	b.pos = offset
	return offset, nil
}

// Read reads from the current offset.
func (b *BlobReader) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	if i := b.pos / b.chunk; i != b.cur {
		if err := b.load(i); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.pos-b.cur*b.chunk:])
	b.pos += int64(n)
	return n, nil
}

// load reads chunk i and checks it.
func (b *BlobReader) load(i int64) error {
	b.cur = -1
	last := (b.size - 1) / b.chunk
	want := b.chunk
	if i == last {
		want = b.size - last*b.chunk
	}
	sum, data, err := b.query(i)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("package %s: chunk %d is missing: %w", b.sha, i, ErrBlobCorrupt)
	}
	if err != nil {
		return fmt.Errorf("read package %s: %w", b.sha, err)
	}
	cs := sha256.Sum256(data)
	if int64(len(data)) != want || hex.EncodeToString(cs[:]) != sum {
		return fmt.Errorf("package %s: chunk %d (%d bytes, %d expected) does not match its digest: %w", b.sha, i, len(data), want, ErrBlobCorrupt)
	}
	if i == b.hnum {
		b.h.Write(data)
		b.hnum++
		if i == last && hex.EncodeToString(b.h.Sum(nil)) != b.sha {
			return fmt.Errorf("package %s: the chunks do not make up the package: %w", b.sha, ErrBlobCorrupt)
		}
	}
	b.cur, b.buf = i, data
	return nil
}

// query reads chunk i into b's buffer (reused from chunk to chunk).
func (b *BlobReader) query(i int64) (string, []byte, error) {
	rows, err := b.db.QueryContext(b.ctx, `SELECT chunk_sha256, data FROM package_chunks WHERE sha256 = ? AND seq = ?`, b.sha, i)
	if err != nil {
		return "", nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "", nil, err
		}
		return "", nil, sql.ErrNoRows
	}
	var sum string
	var raw sql.RawBytes
	if err := rows.Scan(&sum, &raw); err != nil {
		return "", nil, err
	}
	b.buf = append(b.buf[:0], raw...)
	return sum, b.buf, rows.Close()
}

// VerifyPackageBlob reads the whole stored package sha and checks it
// against its digest (ErrBlobCorrupt if it does not match).
func VerifyPackageBlob(ctx context.Context, s PackageBlobs, sha string) error {
	b, err := s.OpenPackageBlob(ctx, sha)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, b)
	return err
}
