package signing

import (
	"cmp"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/saferead"
)

// Trust-store file names. A key entry is "<name>.key.json"; catalog state
// is "catalog-<name>.state.json" (see catalog.go).
const (
	trustKeySuffix = ".key.json"
	trustLockName  = ".trust"
	maxTrustFile   = 256 << 10
)

var (
	trustNameRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`) })
	catalogNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`) })
)

// rootOwner owns the trust store and the catalog state files. It is
// spelt out rather than taken from agent/layout so that signing stays a
// leaf the control plane may import (it checks envelopes on publish).
var rootOwner = atomicfile.Owner{User: "root", Group: "root"}

// TrustedKey is one trust-store entry: a public key and what it may sign.
type TrustedKey struct {
	Name      string    `json:"name"`
	Algorithm Algorithm `json:"algorithm"`
	KeyID     string    `json:"keyId"`
	PublicKey string    `json:"publicKey"` // PEM
	// Publishers this key may sign packages for (matched case-insensitively).
	Publishers []string `json:"publishers,omitempty"`
	// Catalogs this key may sign (catalog names, lower case).
	Catalogs []string  `json:"catalogs,omitempty"`
	Added    time.Time `json:"added"`

	pub          crypto.PublicKey
	verifier     signature.Verifier
	anyPublisher bool
}

// AllowsPublisher reports whether the key may sign for publisher.
func (k *TrustedKey) AllowsPublisher(publisher string) bool {
	for _, p := range k.Publishers {
		if strings.EqualFold(p, publisher) {
			return true
		}
	}
	return false
}

// AllowsCatalog reports whether the key may sign catalog name.
func (k *TrustedKey) AllowsCatalog(name string) bool {
	for _, c := range k.Catalogs {
		if c == name {
			return true
		}
	}
	return false
}

// Verifier returns the sigstore verifier of the key.
func (k *TrustedKey) Verifier() signature.Verifier { return k.verifier }

// PublicKeyValue returns the parsed public key.
func (k *TrustedKey) PublicKeyValue() crypto.PublicKey { return k.pub }

// NewTrustedKey returns an in-memory trust entry for a PEM public key that
// may sign for publishers and catalogs, as LoadTrustStore would load it. It
// writes nothing: an extension manager or a test builds a TrustStore from
// such entries.
func NewTrustedKey(name string, publicKeyPEM []byte, publishers, catalogs []string) (*TrustedKey, error) {
	k := &TrustedKey{Name: name, PublicKey: string(publicKeyPEM), Publishers: publishers, Catalogs: catalogs}
	if err := k.load(); err != nil {
		return nil, fail(CodeBadKey, err, "trust entry %q", name)
	}
	return k, nil
}

// load parses PublicKey and checks that KeyID matches it.
func (k *TrustedKey) load() error {
	if !trustNameRE().MatchString(k.Name) {
		return fmt.Errorf("entry name %q is not valid", k.Name)
	}
	pub, alg, err := ParsePublicKey([]byte(k.PublicKey))
	if err != nil {
		return err
	}
	id, err := KeyID(pub)
	if err != nil {
		return err
	}
	if k.KeyID != "" && k.KeyID != id {
		return fmt.Errorf("keyId %s does not match the public key (%s)", k.KeyID, id)
	}
	k.KeyID, k.Algorithm, k.pub = id, alg, pub
	k.verifier, err = NewVerifier(pub)
	return err
}

// TrustStore is the set of trusted publisher and catalog keys.
type TrustStore struct {
	Dir  string
	Keys []*TrustedKey // sorted by name
}

// Get returns the entry called name.
func (s *TrustStore) Get(name string) (*TrustedKey, bool) {
	for _, k := range s.Keys {
		if k.Name == name {
			return k, true
		}
	}
	return nil, false
}

// ForCatalog returns the keys allowed to sign catalog name.
func (s *TrustStore) ForCatalog(name string) []*TrustedKey {
	var out []*TrustedKey
	for _, k := range s.Keys {
		if k.AllowsCatalog(name) {
			out = append(out, k)
		}
	}
	return out
}

// TrustOption changes how LoadTrustStore checks the store.
type TrustOption func(*trustConfig)

type trustConfig struct {
	allowForeignOwner bool
	warn              func(string)
}

// AllowNonRootOwner skips the "owned by root" check (the group/world-writable
// check stays) and reports each skipped check through warn (may be nil).
// The CLI uses it under --root when not running as root.
func AllowNonRootOwner(warn func(msg string)) TrustOption {
	return func(c *trustConfig) { c.allowForeignOwner, c.warn = true, warn }
}

// LoadTrustStore reads the trust store in dir. A missing directory is an
// empty store (which trusts nothing). It fails with a *TrustError matching
// CodeTrustInsecure when the directory or a file in it is a symlink, is
// group- or world-writable, or is not owned by root (unless
// AllowNonRootOwner), and with one matching CodeTrustCorrupt when an entry
// cannot be read or parsed. Both are wrapped in an *errcode.Error
// (ARC0106, ARC0107).
func LoadTrustStore(dir string, opts ...TrustOption) (*TrustStore, error) {
	var cfg trustConfig
	for _, o := range opts {
		o(&cfg)
	}
	store := &TrustStore{Dir: dir}
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return store, nil
	}
	if err != nil {
		return nil, trustErr(CodeTrustCorrupt, dir, err.Error())
	}
	if err := checkTrustPath(dir, fi, true, &cfg); err != nil {
		return nil, err
	}
	// Every read below is confined to dir: a link is never followed, a
	// FIFO or device is refused without blocking or reading.
	root, err := saferead.Open(dir)
	if err != nil {
		return nil, trustErr(CodeTrustCorrupt, dir, "cannot open the directory: "+err.Error())
	}
	defer root.Close()
	if opened, err := root.Lstat("."); err != nil || !os.SameFile(fi, opened) {
		return nil, trustErr(CodeTrustInsecure, dir, "was replaced while it was read; check who can write its parent directory")
	}
	d, err := root.OpenDir(".")
	if err != nil {
		return nil, trustErr(CodeTrustCorrupt, dir, "cannot open the directory: "+err.Error())
	}
	ents, err := d.Entries()
	d.Close()
	if err != nil {
		return nil, trustErr(CodeTrustCorrupt, dir, "cannot list the directory: "+err.Error())
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return cmp.Compare(a.Name(), b.Name()) })
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		fi, err := root.Lstat(e.Name())
		if err != nil {
			return nil, trustErr(CodeTrustCorrupt, p, err.Error())
		}
		if err := checkTrustPath(p, fi, false, &cfg); err != nil {
			return nil, err
		}
		if !strings.HasSuffix(e.Name(), trustKeySuffix) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := root.ReadFile(e.Name(), maxTrustFile)
		if err != nil {
			return nil, trustErr(CodeTrustCorrupt, p, "cannot read: "+err.Error())
		}
		var k TrustedKey
		if err := json.Unmarshal(data, &k); err != nil {
			return nil, trustErr(CodeTrustCorrupt, p, "not a trust entry: "+err.Error())
		}
		if err := k.load(); err != nil {
			return nil, trustErr(CodeTrustCorrupt, p, err.Error())
		}
		if k.Name+trustKeySuffix != e.Name() {
			return nil, trustErr(CodeTrustCorrupt, p, fmt.Sprintf("entry is named %q but the file is %s", k.Name, e.Name()))
		}
		store.Keys = append(store.Keys, &k)
	}
	slices.SortFunc(store.Keys, func(a, b *TrustedKey) int { return cmp.Compare(a.Name, b.Name) })
	return store, nil
}

// readInDir reads the regular file base of dir, confined to dir (see
// saferead): no link followed, no FIFO blocked on, at most limit bytes.
func readInDir(dir, base string, limit int64) ([]byte, error) {
	root, err := saferead.Open(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(base, limit)
}

func trustErr(code errcode.Code, path, reason string) error {
	te := &TrustError{Path: path, Reason: reason, Code: code}
	if code == CodeTrustInsecure {
		return fail(CodeTrustInsecure, te, "refusing the trust store")
	}
	return fail(CodeTrustCorrupt, te, "cannot use the trust store")
}

// checkTrustPath applies the ownership and mode rules to one path.
func checkTrustPath(p string, fi fs.FileInfo, isDir bool, cfg *trustConfig) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return trustErr(CodeTrustInsecure, p, "is a symbolic link; the trust store must hold real files")
	case isDir && !fi.IsDir():
		return trustErr(CodeTrustInsecure, p, "is not a directory")
	case !isDir && !fi.Mode().IsRegular():
		return trustErr(CodeTrustInsecure, p, "is not a regular file")
	case fi.Mode().Perm()&0o022 != 0:
		return trustErr(CodeTrustInsecure, p, fmt.Sprintf("mode %04o is group- or world-writable", fi.Mode().Perm()))
	}
	return checkTrustOwner(p, fi, isDir, cfg)
}

// AddKeyOptions describes a new trust entry.
type AddKeyOptions struct {
	Name         string
	PublicKeyPEM []byte
	Publishers   []string
	Catalogs     []string
	Now          time.Time // zero: time.Now()
}

// AddTrustedKey adds an entry to the trust store in dir, creating the
// directory (0755) when missing. The entry file is written atomically
// (0644, root:root when running as root). It refuses a taken name
// (CodeTrustKeyUnknown) and a key already trusted under another name.
func AddTrustedKey(ctx context.Context, dir string, o AddKeyOptions, opts ...TrustOption) (*TrustedKey, error) {
	if !trustNameRE().MatchString(o.Name) {
		return nil, fail(CodeTrustKeyUnknown, nil, "trust entry name %q: use letters, digits, '.', '_' and '-' (at most 64)", o.Name)
	}
	if len(o.Publishers) == 0 && len(o.Catalogs) == 0 {
		return nil, fail(CodeTrustKeyUnknown, nil, "a trust entry must name at least one --publisher or --catalog it may sign")
	}
	k := &TrustedKey{Name: o.Name, PublicKey: string(o.PublicKeyPEM), Added: o.Now}
	if k.Added.IsZero() {
		k.Added = time.Now().UTC().Truncate(time.Second)
	}
	for _, p := range o.Publishers {
		if len(p) > 128 || !publisherRE().MatchString(p) {
			return nil, fail(CodeBadPackageName, nil, "publisher %q: use letters and digits separated by dots", p)
		}
		k.Publishers = appendUniqueFold(k.Publishers, p)
	}
	for _, c := range o.Catalogs {
		if !catalogNameRE().MatchString(c) {
			return nil, fail(CodeBadPackageName, nil, "catalog name %q: use lower-case letters, digits, '.', '_' and '-'", c)
		}
		k.Catalogs = appendUniqueFold(k.Catalogs, c)
	}
	if err := k.load(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create trust store %s: %w", dir, err)
	}
	if err := atomicfile.Chown(dir, rootOwner); err != nil {
		return nil, err
	}
	lock, err := atomicfile.LockFile(ctx, filepath.Join(dir, trustLockName))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	store, err := LoadTrustStore(dir, opts...)
	if err != nil {
		return nil, err
	}
	if _, taken := store.Get(k.Name); taken {
		return nil, fail(CodeTrustKeyUnknown, nil, "trust entry %q exists; remove it first with `arcagent trust remove %s`", k.Name, k.Name)
	}
	for _, other := range store.Keys {
		if other.KeyID == k.KeyID {
			return nil, fail(CodeTrustKeyUnknown, nil, "this key is already trusted as %q; remove that entry first to change what it may sign", other.Name)
		}
	}
	data, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, k.Name+trustKeySuffix)
	if err := atomicfile.WriteFile(path, append(data, '\n'), atomicfile.WriteOptions{Mode: 0o644, Owner: rootOwner}); err != nil {
		return nil, fmt.Errorf("write trust entry: %w", err)
	}
	return k, nil
}

// RemoveTrustedKey deletes the entry called name.
func RemoveTrustedKey(ctx context.Context, dir, name string, opts ...TrustOption) error {
	if !trustNameRE().MatchString(name) {
		return fail(CodeTrustKeyUnknown, nil, "no trust entry called %q", name)
	}
	if _, err := os.Stat(dir); err != nil {
		return fail(CodeTrustKeyUnknown, nil, "no trust entry called %q (the trust store %s does not exist)", name, dir)
	}
	lock, err := atomicfile.LockFile(ctx, filepath.Join(dir, trustLockName))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	store, err := LoadTrustStore(dir, opts...)
	if err != nil {
		return err
	}
	if _, ok := store.Get(name); !ok {
		return fail(CodeTrustKeyUnknown, nil, "no trust entry called %q", name)
	}
	if err := os.Remove(filepath.Join(dir, name+trustKeySuffix)); err != nil {
		return fmt.Errorf("remove trust entry %s: %w", name, err)
	}
	return atomicfile.SyncDir(dir)
}

func appendUniqueFold(list []string, v string) []string {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return list
		}
	}
	return append(list, v)
}
