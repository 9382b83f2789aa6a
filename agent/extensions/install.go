package extensions

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/saferead"
	"github.com/arcagent/arcagent/signing"
)

// Install records live beside the extension trees, in a hidden directory of
// the extensions directory:
//
//	<ExtensionsDir>/<Publisher.Type-Version>/                 the tree
//	<ExtensionsDir>/.arcagent/<Publisher.Type-Version>/manifest.json      the InstallRecord
//	<ExtensionsDir>/.arcagent/<Publisher.Type-Version>/envelope.sig.json  the DSSE envelope, byte for byte
const (
	RecordsDirName   = ".arcagent"
	RecordManifest   = "manifest.json"
	RecordEnvelope   = "envelope.sig.json"
	InstallRecordV1  = "https://arcagent.dev/install-record/v1"
	maxRecordSize    = 64 << 20
	extensionDirMode = 0o700
)

// RuntimePaths are written by the extension manager and the extension at
// run time (docs/signing.md), not by the package: CheckTree ignores them.
// A path matches itself and everything below it.
var RuntimePaths = []string{"HandlerEnvironment.json", "config", "status", "heartbeat.log"}

// InstallRecord is the manifest written beside an installed tree.
type InstallRecord struct {
	Schema        string          `json:"schema"`
	Name          string          `json:"name"` // <Publisher>.<Type>-<Version>
	Package       signing.Package `json:"package"`
	PackageFile   string          `json:"packageFile"`
	PackageSHA256 string          `json:"packageSha256"`
	PackageSize   int64           `json:"packageSize"`
	Signer        string          `json:"signer"` // trust entry name at install time
	KeyID         string          `json:"keyId"`
	InstalledAt   time.Time       `json:"installedAt"`
	Files         []FileRecord    `json:"files"`
}

// RecordDir is the directory holding the install record of name.
func RecordDir(extensionsDir, name string) string {
	return filepath.Join(extensionsDir, RecordsDirName, name)
}

// InstallOptions says what to install where.
type InstallOptions struct {
	Package       string // path of the zip
	Envelope      []byte // nil: read Package+".sig.json"
	Trust         *signing.TrustStore
	Expect        signing.Expectation // what the control plane asked for
	ExtensionsDir string              // layout.ExtensionsDir()
	Limits        Limits
	Replace       bool // replace an installed tree of the same name
	// StagingDir holds the private copy of the package while it is
	// verified (default: a directory under ExtensionsDir/.arcagent). With
	// it set, nothing is created under ExtensionsDir before the package
	// verified and its archive passed the extraction rules.
	StagingDir string
	Logger     *slog.Logger
	Now        time.Time
}

// InstallResult describes an installed extension.
type InstallResult struct {
	Dir       string          `json:"dir"`
	RecordDir string          `json:"recordDir"`
	Record    *InstallRecord  `json:"record"`
	Verified  *signing.Result `json:"verified"`
}

// Install verifies a package (VerifyPackage, against opts.Trust), and only
// then extracts it to <ExtensionsDir>/<Publisher.Type-Version> (mode 0700)
// and writes its install record. The package is read once: the bytes that
// are hashed are copied to a private staging file, and that copy is what
// gets extracted, so a package changed after verification is never used.
func Install(ctx context.Context, o InstallOptions) (*InstallResult, error) {
	if o.ExtensionsDir == "" {
		return nil, errcode.New(errcode.Usage, "no extensions directory given")
	}
	// Read the envelope once: the bytes verified are the bytes recorded.
	env := o.Envelope
	if env == nil {
		var err error
		if env, err = signing.ReadEnvelopeFile(o.Package + signing.SignatureSuffix); err != nil {
			return nil, err
		}
	}
	recRoot := filepath.Join(o.ExtensionsDir, RecordsDirName)
	stageParent := o.StagingDir
	if stageParent == "" {
		if err := makeRecordRoot(o.ExtensionsDir, recRoot); err != nil {
			return nil, err
		}
		stageParent = recRoot
	}
	verifyDir, err := os.MkdirTemp(stageParent, "verify-*")
	if err != nil {
		return nil, fmt.Errorf("create a staging directory in %s: %w", stageParent, err)
	}
	defer os.RemoveAll(verifyDir)

	copyPath := filepath.Join(verifyDir, "package.zip")
	cp, err := os.OpenFile(copyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create staging copy: %w", err)
	}
	res, err := signing.VerifyPackage(ctx, signing.VerifyOptions{Package: o.Package, Envelope: env, Trust: o.Trust, Expect: o.Expect, Logger: o.Logger, Copy: cp})
	if cerr := cp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write staging copy: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	zf, err := os.Open(copyPath)
	if err != nil {
		return nil, err
	}
	defer zf.Close()
	// The archive's entries are checked before anything is created for it.
	lim := o.Limits.withDefaults()
	plan, err := planExtraction(zf, res.Size, lim)
	if err != nil {
		return nil, err
	}
	if err := makeRecordRoot(o.ExtensionsDir, recRoot); err != nil {
		return nil, err
	}
	staging, err := os.MkdirTemp(recRoot, "staging-*")
	if err != nil {
		return nil, fmt.Errorf("create a staging directory in %s: %w", recRoot, err)
	}
	defer os.RemoveAll(staging)
	name := res.Package.Name()
	dest := filepath.Join(o.ExtensionsDir, name)
	lock, err := atomicfile.LockFile(ctx, filepath.Join(recRoot, name))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	_, statErr := os.Lstat(dest)
	exists := statErr == nil
	if exists && !o.Replace {
		return nil, fail(CodeAlreadyInstalled, nil, "%s is already installed in %s", name, dest)
	}

	tree := filepath.Join(staging, "tree")
	if err := os.Mkdir(tree, extensionDirMode); err != nil {
		return nil, err
	}
	files, err := extractPlan(ctx, plan, tree, lim)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	rec := &InstallRecord{
		Schema: InstallRecordV1, Name: name, Package: res.Package,
		PackageFile: res.Package.FileName(), PackageSHA256: res.SHA256, PackageSize: res.Size,
		Signer: res.Signer, KeyID: res.KeyID, InstalledAt: now.UTC().Truncate(time.Second), Files: files,
	}
	recDir := RecordDir(o.ExtensionsDir, name)
	if err := os.MkdirAll(recDir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", recDir, err)
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	wo := atomicfile.WriteOptions{Mode: 0o600, Owner: atomicfile.Owner{User: layout.UserRoot, Group: layout.GroupRoot}}
	if err := atomicfile.WriteFile(filepath.Join(recDir, RecordEnvelope), env, wo); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(recDir, RecordManifest), append(data, '\n'), wo); err != nil {
		return nil, err
	}
	if exists {
		old := filepath.Join(staging, "old")
		if err := os.Rename(dest, old); err != nil {
			return nil, fmt.Errorf("move the installed %s aside: %w", name, err)
		}
	}
	if err := os.Rename(tree, dest); err != nil {
		return nil, fmt.Errorf("move the extracted tree to %s: %w", dest, err)
	}
	if err := atomicfile.SyncDir(o.ExtensionsDir); err != nil {
		return nil, err
	}
	logger(o.Logger).Info("extension installed", "name", name, "dir", dest, "signer", res.Signer, "files", len(files))
	return &InstallResult{Dir: dest, RecordDir: recDir, Record: rec, Verified: res}, nil
}

// makeRecordRoot creates the extensions directory (0755) and its records
// directory (0700).
func makeRecordRoot(extensionsDir, recRoot string) error {
	if err := os.MkdirAll(extensionsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", extensionsDir, err)
	}
	if err := os.MkdirAll(recRoot, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", recRoot, err)
	}
	return nil
}

// Remove deletes an installed extension's tree and its install record
// (name is <Publisher.Type-Version>). What is already gone is not an error.
func Remove(ctx context.Context, extensionsDir, name string) error {
	if strings.ContainsAny(name, "/\\") || name == "" || name == "." || name == ".." || name == RecordsDirName {
		return fail(CodeInstallRecord, nil, "%q is not an extension name", name)
	}
	if err := makeRecordRoot(extensionsDir, filepath.Join(extensionsDir, RecordsDirName)); err != nil {
		return err
	}
	lock, err := atomicfile.LockFile(ctx, filepath.Join(extensionsDir, RecordsDirName, name))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	dest := filepath.Join(extensionsDir, name)
	if err := os.RemoveAll(dest); err != nil {
		return fmt.Errorf("delete %s: %w", dest, err)
	}
	if err := os.RemoveAll(RecordDir(extensionsDir, name)); err != nil {
		return fmt.Errorf("delete the install record of %s: %w", name, err)
	}
	// The lock file goes too; callers serialise installs and removals of
	// one name (the extension manager's state lock), so no waiter is left
	// holding a lock on the removed file.
	_ = os.Remove(filepath.Join(extensionsDir, RecordsDirName, name) + ".lock")
	return atomicfile.SyncDir(extensionsDir)
}

// ReadInstallRecord reads the install record and envelope of the extension
// called name (<Publisher.Type-Version>) under extensionsDir. Both files
// are read inside extensionsDir (internal/saferead): a link in the record
// directory that leaves it, a link as the file itself, a FIFO or a device
// is refused (CodeInstallRecord, naming the path), never followed or
// blocked on.
func ReadInstallRecord(extensionsDir, name string) (*InstallRecord, []byte, error) {
	dir := RecordDir(extensionsDir, name)
	if path.Base(name) != name || name == "." || name == ".." {
		return nil, nil, fail(CodeInstallRecord, nil, "%q is not an extension name", name)
	}
	root, err := saferead.Open(extensionsDir)
	if err != nil {
		return nil, nil, fail(CodeInstallRecord, err, "no install record for %s in %s", name, dir)
	}
	defer root.Close()
	recRel := path.Join(RecordsDirName, name)
	data, err := root.ReadFile(path.Join(recRel, RecordManifest), maxRecordSize)
	if err != nil {
		err = fullPath(extensionsDir, err)
		return nil, nil, fail(CodeInstallRecord, err, "no install record for %s in %s", name, dir)
	}
	var rec InstallRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, nil, fail(CodeInstallRecord, err, "install record %s is corrupt", filepath.Join(dir, RecordManifest))
	}
	if rec.Schema != InstallRecordV1 || rec.Name != name {
		return nil, nil, fail(CodeInstallRecord, nil, "install record %s is not a v1 record for %s", filepath.Join(dir, RecordManifest), name)
	}
	env, err := root.ReadFile(path.Join(recRel, RecordEnvelope), maxEnvelopeSize)
	if err != nil {
		err = fullPath(extensionsDir, err)
		return nil, nil, fail(CodeInstallRecord, err, "no recorded envelope for %s", name)
	}
	return &rec, env, nil
}

// fullPath names the path of err in full (saferead names it relative to
// the directory it was confined to). A plain OS error reads as before the
// reads were confined ("open PATH: no such file or directory").
func fullPath(dir string, err error) error {
	var se *saferead.Error
	if !errors.As(err, &se) {
		return err
	}
	full := filepath.Join(dir, se.Path)
	for _, reason := range []error{saferead.ErrSymlink, saferead.ErrNotRegular, saferead.ErrTooLarge, saferead.ErrEscapes} {
		if errors.Is(se.Err, reason) {
			se.Path = full
			return se
		}
	}
	return &fs.PathError{Op: "open", Path: full, Err: se.Err}
}

// ListInstalled returns the names of the extensions under extensionsDir: every
// non-hidden directory and every install record, sorted, once each. The
// records directory is opened inside extensionsDir without following a
// link; entries that are links are not extensions.
func ListInstalled(extensionsDir string) ([]string, error) {
	set := map[string]bool{}
	root, err := saferead.Open(extensionsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", extensionsDir, err)
	}
	defer root.Close()
	top, err := root.OpenDir(".")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", extensionsDir, err)
	}
	defer top.Close()
	dirs := []*saferead.Dir{top}
	recs, err := top.Sub(RecordsDirName)
	switch {
	case err == nil:
		defer recs.Close()
		dirs = append(dirs, recs)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("list %s: %w", filepath.Join(extensionsDir, RecordsDirName), err)
	}
	for i, d := range dirs {
		ents, err := d.Entries()
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", filepath.Join(extensionsDir, []string{".", RecordsDirName}[i]), err)
		}
		for _, e := range ents {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(e.Name(), "staging-") {
				set[e.Name()] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// Change kinds reported by CheckTree.
const (
	ChangeModified = "changed"
	ChangeMissing  = "missing"
	ChangeAdded    = "added"
)

// Change is one difference between a tree and its install record.
type Change struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"` // changed, missing, added
	Detail string `json:"detail,omitempty"`
}

// TreeReport is the result of a tamper check.
type TreeReport struct {
	Dir     string   `json:"dir"`
	Name    string   `json:"name"`
	Changes []Change `json:"changes"`
}

// Clean reports whether the tree matches its record.
func (r *TreeReport) Clean() bool { return len(r.Changes) == 0 }

// Err returns an CodeTreeTampered error (ARC0117) listing the changes, or nil.
func (r *TreeReport) Err() error {
	if r.Clean() {
		return nil
	}
	return fail(CodeTreeTampered, nil, "%s: %d path(s) differ from the install record", r.Dir, len(r.Changes))
}

// CheckTree compares an installed tree (<ExtensionsDir>/<name>) with the
// install record beside it and lists changed, missing and added paths.
// Paths under RuntimePaths are ignored. A missing record is an error
// (CodeInstallRecord); differences are not errors, see TreeReport.Err.
func CheckTree(ctx context.Context, dir string) (*TreeReport, error) {
	dir = filepath.Clean(dir)
	name := filepath.Base(dir)
	rec, _, err := ReadInstallRecord(filepath.Dir(dir), name)
	if err != nil {
		return nil, err
	}
	return CompareTree(ctx, dir, rec.Files)
}

func isRuntimePath(p string) bool {
	for _, r := range RuntimePaths {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// CompareTree compares dir with the records of files. Every path is
// looked at inside dir (internal/saferead): a link is never followed (one
// in place of a recorded directory makes the files below it "changed",
// leading outside the tree), a FIFO, device or socket is reported as a
// changed or added special file and never opened, so the check neither
// reads outside the tree nor blocks.
func CompareTree(ctx context.Context, dir string, files []FileRecord) (*TreeReport, error) {
	rep := &TreeReport{Dir: dir, Name: filepath.Base(dir), Changes: []Change{}}
	gone := func() (*TreeReport, error) {
		for _, f := range files {
			if !isRuntimePath(f.Path) {
				rep.Changes = append(rep.Changes, Change{Path: f.Path, Kind: ChangeMissing, Detail: "the extension directory is gone"})
			}
		}
		return rep, nil
	}
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return gone()
	}
	root, err := saferead.Open(dir)
	if err != nil {
		return gone()
	}
	defer root.Close()
	if opened, err := root.Lstat("."); err != nil || !os.SameFile(fi, opened) {
		return gone() // replaced (by a link?) between the two looks
	}
	want := map[string]FileRecord{}
	for _, f := range files {
		want[f.Path] = f
	}
	paths := make([]string, 0, len(files))
	for p := range want {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	parents := map[string]*Change{}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if isRuntimePath(p) {
			continue
		}
		if c := parentChanged(root, p, parents); c != nil {
			rep.Changes = append(rep.Changes, *c)
			continue
		}
		if c := compareOne(ctx, root, want[p]); c != nil {
			rep.Changes = append(rep.Changes, *c)
		}
	}
	top, err := root.OpenDir(".")
	if err != nil {
		return nil, fail(CodeTreeTampered, err, "cannot list %s", dir)
	}
	defer top.Close()
	if err := walkAdded(ctx, top, "", want, rep); err != nil {
		return nil, err
	}
	slices.SortStableFunc(rep.Changes, func(a, b Change) int { return cmp.Compare(a.Path, b.Path) })
	return rep, nil
}

// parentChanged reports p as changed when a directory above it is no
// longer a real directory (a link, even one inside the tree, is not
// followed to what it points at), and as missing when one is gone. memo
// keeps each directory's verdict (nil: a real directory).
func parentChanged(root *saferead.Root, p string, memo map[string]*Change) *Change {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		dir := p[:i]
		c, seen := memo[dir]
		if !seen {
			fi, err := root.Lstat(dir)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				c = &Change{Kind: ChangeMissing}
			case err != nil:
				c = &Change{Kind: ChangeModified, Detail: "cannot be inspected: " + err.Error()}
			case fi.Mode()&fs.ModeSymlink != 0:
				c = &Change{Kind: ChangeModified, Detail: dir + " is now a symbolic link, which is not followed"}
			case !fi.IsDir():
				c = &Change{Kind: ChangeModified, Detail: dir + " is no longer a directory"}
			}
			memo[dir] = c
		}
		if c != nil {
			return &Change{Path: p, Kind: c.Kind, Detail: c.Detail}
		}
	}
	return nil
}

// walkAdded lists the paths of d (rel inside the tree) that have no record.
// Subdirectories are opened without following links.
func walkAdded(ctx context.Context, d *saferead.Dir, rel string, want map[string]FileRecord, rep *TreeReport) error {
	ents, err := d.Entries()
	if err != nil {
		return nil // a vanished directory is reported as missing by compareOne
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return cmp.Compare(a.Name(), b.Name()) })
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := path.Join(rel, e.Name())
		if isRuntimePath(p) {
			continue
		}
		if _, ok := want[p]; !ok {
			rep.Changes = append(rep.Changes, Change{Path: p, Kind: ChangeAdded, Detail: typeOf(e.Type())})
			continue
		}
		if !e.IsDir() {
			continue
		}
		sub, err := d.Sub(e.Name())
		if err != nil {
			continue // replaced since the listing: compareOne reported it
		}
		err = walkAdded(ctx, sub, p, want, rep)
		sub.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func typeOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "new " + TypeDir
	case m&fs.ModeSymlink != 0:
		return "new " + TypeSymlink
	case m.IsRegular():
		return "new " + TypeFile
	}
	return "new special file"
}

func compareOne(ctx context.Context, root *saferead.Root, want FileRecord) *Change {
	c := &Change{Path: want.Path, Kind: ChangeModified}
	fi, err := root.Lstat(want.Path)
	if errors.Is(err, fs.ErrNotExist) {
		c.Kind, c.Detail = ChangeMissing, ""
		return c
	}
	if err != nil {
		// A directory on the way was replaced by a link out of the tree,
		// or cannot be searched: the recorded path is not what was installed.
		c.Detail = "cannot be inspected: " + err.Error()
		return c
	}
	got := TypeFile
	switch {
	case fi.IsDir():
		got = TypeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		got = TypeSymlink
	case !fi.Mode().IsRegular():
		got = "special file"
	}
	if got != want.Type {
		c.Detail = fmt.Sprintf("was a %s, is a %s", want.Type, got)
		return c
	}
	switch want.Type {
	case TypeSymlink:
		t, err := root.Readlink(want.Path)
		if err != nil || t != want.Target {
			c.Detail = fmt.Sprintf("link target %q, recorded %q", t, want.Target)
			return c
		}
	case TypeFile:
		if exec := fi.Mode().Perm()&0o111 != 0; exec != want.Exec {
			c.Detail = fmt.Sprintf("executable bit is %v, recorded %v", exec, want.Exec)
			return c
		}
		if fi.Mode().Perm()&0o022 != 0 || fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
			c.Detail = fmt.Sprintf("mode %s is looser than installed", fi.Mode())
			return c
		}
		if fi.Size() != want.Size {
			c.Detail = fmt.Sprintf("size %d, recorded %d", fi.Size(), want.Size)
			return c
		}
		// Opened without following a link and without blocking, and
		// checked to be a regular file again: a swap since the Lstat is
		// refused, not read through.
		f, err := root.Open(want.Path)
		if err != nil {
			c.Detail = "cannot be read: " + err.Error()
			return c
		}
		sum, n, err := signing.HashReader(ctx, f)
		f.Close()
		if err != nil {
			c.Detail = "cannot be read: " + err.Error()
			return c
		}
		if n != want.Size {
			c.Detail = fmt.Sprintf("size %d, recorded %d", n, want.Size)
			return c
		}
		if sum != want.SHA256 {
			c.Detail = "content differs (sha256 " + sum[:12] + "…)"
			return c
		}
	}
	return nil
}

// Verdict is the answer for one installed extension.
type Verdict struct {
	Name    string          `json:"name"`
	Dir     string          `json:"dir"`
	Valid   bool            `json:"valid"`
	Reason  string          `json:"reason"`
	Code    errcode.Code    `json:"code,omitempty"` // set when not valid
	Signer  string          `json:"signer,omitempty"`
	KeyID   string          `json:"keyId,omitempty"`
	Package signing.Package `json:"package"`
	SHA256  string          `json:"sha256,omitempty"`
	Changes []Change        `json:"changes,omitempty"`
	Remedy  string          `json:"remedy,omitempty"` // what to do, when not valid
}

// VerifyRecord checks a recorded envelope against the trust store without
// the package file: signature by a trusted key allowed for the publisher,
// statement equal to the record's publisher/type/version, subject digest
// and size equal to the recorded package digest and size.
func VerifyRecord(ctx context.Context, store *signing.TrustStore, rec *InstallRecord, envelope []byte) (*signing.Result, error) {
	var keys []*signing.TrustedKey
	if store != nil {
		keys = store.Keys
	}
	exp := signing.Expectation{Publisher: rec.Package.Publisher, Type: rec.Package.Type, Version: rec.Package.Version}
	st, signer, err := signing.VerifyEnvelope(ctx, envelope, keys, exp)
	if err != nil {
		return nil, err
	}
	if st.SHA256() != rec.PackageSHA256 || st.Predicate.Size != rec.PackageSize {
		return nil, fail(signing.CodeDigestMismatch, nil, "the recorded envelope signs sha256 %s (%d bytes), the record says %s (%d bytes)", st.SHA256(), st.Predicate.Size, rec.PackageSHA256, rec.PackageSize)
	}
	if st.Package().Name() != rec.Name {
		return nil, fail(signing.CodeStatementMismatch, nil, "the recorded envelope is for %s, the record for %s", st.Package().Name(), rec.Name)
	}
	return &signing.Result{Statement: st, Package: st.Package(), Signer: signer.Name, KeyID: signer.KeyID, SHA256: st.SHA256(), Size: st.Predicate.Size}, nil
}

// CheckInstalled gives the verdict on an installed extension: its recorded
// envelope verified against store (VerifyRecord) and, when checkTree is
// set, its files compared with the record (CheckTree). It fails closed:
// any error becomes an invalid verdict with the error's code and message.
func CheckInstalled(ctx context.Context, store *signing.TrustStore, extensionsDir, name string, checkTree bool) *Verdict {
	v, _ := checkInstalled(ctx, store, extensionsDir, name, checkTree)
	return v
}

// checkInstalled is CheckInstalled that also returns the error that made
// the verdict invalid.
func checkInstalled(ctx context.Context, store *signing.TrustStore, extensionsDir, name string, checkTree bool) (*Verdict, error) {
	v := &Verdict{Name: name, Dir: filepath.Join(extensionsDir, name)}
	invalid := func(err error) (*Verdict, error) {
		v.Valid, v.Reason = false, errcode.Format(err)
		var ce *errcode.Error
		if errors.As(err, &ce) {
			v.Code = ce.Code
			v.Remedy = ce.Remedy()
		}
		return v, err
	}
	if path.Base(name) != name || strings.HasPrefix(name, ".") {
		return invalid(fail(CodeInstallRecord, nil, "%q is not an extension name", name))
	}
	rec, env, err := ReadInstallRecord(extensionsDir, name)
	if err != nil {
		return invalid(err)
	}
	v.Package, v.SHA256 = rec.Package, rec.PackageSHA256
	res, err := VerifyRecord(ctx, store, rec, env)
	if err != nil {
		return invalid(err)
	}
	v.Signer, v.KeyID = res.Signer, res.KeyID
	if checkTree {
		rep, err := CompareTree(ctx, v.Dir, rec.Files)
		if err != nil {
			return invalid(err)
		}
		v.Changes = rep.Changes
		if err := rep.Err(); err != nil {
			return invalid(err)
		}
	}
	v.Valid = true
	v.Reason = fmt.Sprintf("signed by trusted key %q for publisher %s", res.Signer, rec.Package.Publisher)
	if checkTree {
		v.Reason += "; files match the install record"
	}
	return v, nil
}

// Verdict states, as `package check` prints them.
const (
	StateOK       = "OK"
	StateTampered = "TAMPERED"
	StateInvalid  = "INVALID"
)

// State is OK for a valid verdict, TAMPERED when only the files differ
// from the record, INVALID otherwise.
func (v *Verdict) State() string {
	switch {
	case v.Valid:
		return StateOK
	case v.Code == CodeTreeTampered:
		return StateTampered
	}
	return StateInvalid
}

// CheckOptions says which installed extension to check and how.
type CheckOptions struct {
	// Dir is the extension's directory, <ExtensionsDir>/<Publisher.Type-Version>.
	Dir string
	// Trust verifies the recorded envelope; unused with TreeOnly.
	Trust *signing.TrustStore
	// TreeOnly compares the files with the install record and does not
	// verify the recorded signature.
	TreeOnly bool
}

// Check decides on an installed extension, failing closed. The verdict is
// invalid (a finding) when the signature is no longer trusted or the files
// differ from the install record. An error is returned, and no verdict,
// when the check could not be made: the record is missing or unreadable, or
// the input is bad (errors whose exit status is not errcode.ExitFindings).
func Check(ctx context.Context, o CheckOptions) (*Verdict, error) {
	dir := filepath.Clean(o.Dir)
	extDir, name := filepath.Dir(dir), filepath.Base(dir)
	if !o.TreeOnly {
		v, err := checkInstalled(ctx, o.Trust, extDir, name, true)
		if err != nil && errcode.ExitCode(err) != errcode.ExitFindings {
			return nil, err
		}
		return v, nil
	}
	rep, err := CheckTree(ctx, dir)
	if err != nil {
		return nil, err
	}
	v := &Verdict{Name: name, Dir: dir, Valid: rep.Clean(), Changes: rep.Changes, Reason: "files match the install record"}
	if err := rep.Err(); err != nil {
		v.Code, v.Reason = CodeTreeTampered, errcode.Format(err)
		var ce *errcode.Error
		if errors.As(err, &ce) {
			v.Remedy = ce.Remedy()
		}
	}
	return v, nil
}
