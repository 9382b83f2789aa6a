package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane/store/storetest"
)

func blobOf(n int, seed uint64) ([]byte, string) {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	s := sha256.Sum256(b)
	return b, hex.EncodeToString(s[:])
}

// TestPackageBlobs stores packages of one, several and a partial chunk
// with their envelopes, reads them back whole and by ranges, refuses
// bytes that are not the package, and refuses to serve a corrupted chunk.
func TestPackageBlobs(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		sizes := []int{1, PackageChunkSize, 2*PackageChunkSize + 17}
		var shas []string
		var datas [][]byte
		for i, n := range sizes {
			data, sha := blobOf(n, uint64(i))
			p := Package{Publisher: "P", Type: "T", Version: string(rune('1' + i)), SHA256: sha, Size: int64(n), PublishedAt: now}
			env := []byte(`{"payloadType":"x","n":` + string(rune('0'+i)) + `}`)
			if err := s.CreatePackageWithBlob(ctx, p, env, bytes.NewReader(data)); err != nil {
				t.Fatalf("size %d: %v", n, err)
			}
			if got, err := s.PackageEnvelope(ctx, sha); err != nil || !bytes.Equal(got, env) {
				t.Fatalf("envelope: %q %v", got, err)
			}
			b, err := s.OpenPackageBlob(ctx, sha)
			if err != nil || b.Size() != int64(n) {
				t.Fatalf("open: %v", err)
			}
			got, err := io.ReadAll(b)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("size %d: read %d bytes, %v", n, len(got), err)
			}
			shas, datas = append(shas, sha), append(datas, data)
		}
		// Ranges across chunk boundaries.
		big, sha := datas[2], shas[2]
		b, _ := s.OpenPackageBlob(ctx, sha)
		for _, off := range []int64{PackageChunkSize - 3, 5, 2 * PackageChunkSize, int64(len(big)) - 1} {
			if _, err := b.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 10)
			n, err := io.ReadFull(b, got)
			want := big[off:min(off+10, int64(len(big)))]
			if !bytes.Equal(got[:n], want) || (err != nil && n != len(want)) {
				t.Fatalf("range at %d: %x %v, want %x", off, got[:n], err, want)
			}
		}

		t.Run("refusals", func(t *testing.T) {
			data, sha := blobOf(100, 9)
			p := Package{Publisher: "P", Type: "T", Version: "9", SHA256: sha, Size: 100, PublishedAt: now}
			for name, r := range map[string]io.Reader{"other bytes": bytes.NewReader(append([]byte{1}, data[1:]...)), "short": bytes.NewReader(data[:99]), "long": bytes.NewReader(append(data, 0))} {
				if err := s.CreatePackageWithBlob(ctx, p, []byte(`{}`), r); !errors.Is(err, ErrBlobMismatch) {
					t.Fatalf("%s: %v", name, err)
				}
			}
			if _, err := s.PackageBySHA256(ctx, sha); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a refused blob left its package row: %v", err)
			}
			p.Version = "1" // name taken
			if err := s.CreatePackageWithBlob(ctx, p, []byte(`{}`), bytes.NewReader(data)); !errors.Is(err, ErrConflict) {
				t.Fatalf("taken name: %v", err)
			}
			if _, err := s.OpenPackageBlob(ctx, sha); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a refused package left its bytes: %v", err)
			}
		})
		t.Run("import of a file-only package", func(t *testing.T) {
			data, sha := blobOf(3000, 10)
			if err := s.CreatePackage(ctx, Package{Publisher: "Old", Type: "T", Version: "1", SHA256: sha, Size: 3000, PublishedAt: now}); err != nil {
				t.Fatal(err)
			}
			if ps, err := s.PackagesWithoutBlob(ctx); err != nil || len(ps) != 1 || ps[0].SHA256 != sha {
				t.Fatalf("without blob: %+v %v", ps, err)
			}
			if _, err := s.AddPackageBlob(ctx, sha, 3000, []byte(`{}`), bytes.NewReader(data[:2999])); !errors.Is(err, ErrBlobMismatch) {
				t.Fatalf("short import: %v", err)
			}
			for i, want := range []bool{true, false} {
				if added, err := s.AddPackageBlob(ctx, sha, 3000, []byte(`{}`), bytes.NewReader(data)); err != nil || added != want {
					t.Fatalf("import %d: %v %v", i, added, err)
				}
			}
			if ps, err := s.PackagesWithoutBlob(ctx); err != nil || len(ps) != 0 {
				t.Fatalf("without blob after import: %+v %v", ps, err)
			}
		})
		t.Run("corrupted chunk refused", func(t *testing.T) {
			for _, tc := range []struct {
				name string
				sql  string
			}{
				{"bytes changed", `UPDATE package_chunks SET data = ? WHERE sha256 = ? AND seq = 1`},
				{"bytes and chunk digest changed", `UPDATE package_chunks SET data = ?, chunk_sha256 = ? WHERE sha256 = ? AND seq = 0`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					data, sha := blobOf(PackageChunkSize+5, uint64(len(tc.name)))
					if err := s.CreatePackageWithBlob(ctx, Package{Publisher: "C", Type: tc.name, Version: "1", SHA256: sha, Size: int64(len(data)), PublishedAt: now}, []byte(`{}`), bytes.NewReader(data)); err != nil {
						t.Fatal(err)
					}
					var err error
					if tc.name == "bytes changed" {
						_, err = s.w.ExecContext(ctx, tc.sql, []byte("hello"), sha)
					} else {
						bad := append([]byte{}, data[:PackageChunkSize]...)
						bad[7] ^= 1
						cs := sha256.Sum256(bad)
						_, err = s.w.ExecContext(ctx, tc.sql, bad, hex.EncodeToString(cs[:]), sha)
					}
					if err != nil {
						t.Fatal(err)
					}
					if err := VerifyPackageBlob(ctx, s, sha); !errors.Is(err, ErrBlobCorrupt) {
						t.Fatalf("verify: %v", err)
					}
					// A complete read never ends without an error: the
					// bytes before the bad chunk may have been read, never
					// a whole (wrong) package.
					b, _ := s.OpenPackageBlob(ctx, sha)
					got, err := io.ReadAll(b)
					if !errors.Is(err, ErrBlobCorrupt) || len(got) > PackageChunkSize {
						t.Fatalf("read %d bytes, %v", len(got), err)
					}
				})
			}
		})
	})
}

// TestBlobColumnsAreBinary: on SQLite the BYTEA columns hold BLOBs (not
// text), byte for byte, including bytes that are not UTF-8.
func TestBlobColumnsAreBinary(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	data := []byte{0xff, 0x00, 0xfe, '1', '2'}
	s256 := sha256.Sum256(data)
	sha := hex.EncodeToString(s256[:])
	if err := s.CreatePackageWithBlob(ctx, Package{Publisher: "P", Type: "T", Version: "1", SHA256: sha, Size: 5, PublishedAt: time.Now()}, []byte("{\xff}"), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var typ string
	if err := s.r.QueryRowContext(ctx, `SELECT typeof(data) || ',' || (SELECT typeof(envelope) FROM package_files) FROM package_chunks`).Scan(&typ); err != nil || typ != "blob,blob" {
		t.Fatalf("typeof: %q %v", typ, err)
	}
	if env, err := s.PackageEnvelope(ctx, sha); err != nil || string(env) != "{\xff}" {
		t.Fatalf("envelope %q %v", env, err)
	}
}

// TestCopyAllCopiesBlobs: arcserver migrate's copy carries the package
// bytes and envelopes into PostgreSQL, where they read back verified.
func TestCopyAllCopiesBlobs(t *testing.T) {
	ctx := context.Background()
	src, _ := open(t)
	data, sha := blobOf(PackageChunkSize+1000, 42)
	env := []byte("{\"sig\":\"\xff\"}")
	if err := src.CreatePackageWithBlob(ctx, Package{Publisher: "P", Type: "T", Version: "1", SHA256: sha, Size: int64(len(data)), PublishedAt: time.Now()}, env, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	dst := openPG(t)
	if _, err := CopyAll(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	b, err := dst.OpenPackageBlob(ctx, sha)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("copied blob: %d bytes, %v", len(got), err)
	}
	if e, err := dst.PackageEnvelope(ctx, sha); err != nil || !bytes.Equal(e, env) {
		t.Fatalf("copied envelope %q %v", e, err)
	}
}

// BenchmarkPackageBlob writes and reads a 16 MiB package (the read is
// what a download costs; memory per read stays about one chunk beyond
// what the driver allocates per row), on both engines.
func BenchmarkPackageBlob(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			s := openBench(b, name)
			ctx := context.Background()
			data, sha := blobOf(16<<20, 7)
			if err := s.CreatePackageWithBlob(ctx, Package{Publisher: "P", Type: "T", Version: "1", SHA256: sha, Size: int64(len(data)), PublishedAt: time.Now()}, []byte(`{}`), bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
			b.Run("read", func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					if err := VerifyPackageBlob(ctx, s, sha); err != nil {
						b.Fatal(err)
					}
				}
			})
			// Every chunk is written, then the digest check fails and
			// the transaction rolls back: the write cost, repeatable.
			b.Run("write", func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					if _, err := s.AddPackageBlob(ctx, fmt.Sprintf("%s-%d", sha, i), int64(len(data)), []byte(`{}`), bytes.NewReader(data)); !errors.Is(err, ErrBlobMismatch) {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func openBench(b *testing.B, engine string) *DB {
	b.Helper()
	spec := filepath.Join(b.TempDir(), "db.sqlite")
	if engine == "postgres" {
		spec = storetest.Postgres(b)
	}
	s, err := Open(context.Background(), spec)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
