package guestconfig

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/saferead"
)

// ReadLimit bounds every file a resource reads.
const ReadLimit = 4 << 20

// outputLimit bounds the stdout and stderr a command may return.
const outputLimit = 64 << 10

// EnvOptions configures an Env.
type EnvOptions struct {
	// BackupDir is the host directory under which Set keeps the previous
	// version of every file it replaces or removes; "" disables backups
	// (and with them every write: an Env without backups is read-only).
	BackupDir string
	// Run starts and waits for a command; nil runs it directly. The daemon
	// uses it to place commands in its CPU-limited cgroup.
	Run func(cmd *exec.Cmd) error
	// CommandTimeout bounds each command (default 5 minutes).
	CommandTimeout time.Duration
	// Log receives debug records; nil discards them.
	Log *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// TrustedTree says a non-live root was built by whoever runs this
	// (a test's fixture): only then may user and group resources change
	// it, because the shadow tools chroot into the tree and run its own
	// programs as root (nscd, sss_cache, login.defs' USERDEL_CMD, NSS and
	// PAM modules), and root leaves a chroot at will.
	TrustedTree bool
}

// Env is the target a document is evaluated against: a root prefix ("/"
// for the live host) that every resource path is resolved inside.
type Env struct {
	root   string
	live   bool
	reads  *saferead.Root
	writes *os.Root
	o      EnvOptions
	stamp  string
}

// NewEnv opens root as the target.
func NewEnv(root string, o EnvOptions) (*Env, error) {
	if root == "" {
		root = "/"
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("target root %s: %w", root, err)
	}
	r, err := saferead.Open(abs)
	if err != nil {
		return nil, err
	}
	w, err := os.OpenRoot(abs)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("open %s as the target root: %w", abs, err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Env{root: abs, live: abs == "/", reads: r, writes: w, o: o}, nil
}

// Close releases the root.
func (e *Env) Close() error {
	e.writes.Close()
	return e.reads.Close()
}

// Root is the target's root prefix on this host.
func (e *Env) Root() string { return e.root }

// Live reports whether the target is the running system ("/"): runtime
// state (sysctl values in /proc, systemd's active units, apt) is only
// that of the target when it is.
func (e *Env) Live() bool { return e.live }

// CanWrite reports whether Set may change the target (a backup directory
// was given).
func (e *Env) CanWrite() bool { return e.o.BackupDir != "" }

// Log is the Env's logger.
func (e *Env) Log() *slog.Logger { return e.o.Log }

// HostPath is where the target path p lives on this host, for commands
// that take a path (never for opening: use the Env's methods).
func (e *Env) HostPath(p string) string { return filepath.Join(e.root, filepath.FromSlash(p)) }

// CheckPath validates a resource path: absolute, clean, no "..".
func CheckPath(p string) error {
	switch {
	case p == "" || !strings.HasPrefix(p, "/"):
		return errcode.New(CodeOutside, "path %q must be absolute", p)
	case path.Clean(p) != p:
		return errcode.New(CodeOutside, "path %q is not clean (write %s)", p, path.Clean(p))
	case strings.Contains(p, "\x00"):
		return errcode.New(CodeOutside, "path %q contains a NUL byte", p)
	case p == "/":
		return errcode.New(CodeOutside, "path / names the root itself")
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return errcode.New(CodeOutside, "path %q contains ..", p)
		}
	}
	return nil
}

func rel(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

func (e *Env) wrap(p string, err error) error {
	if errors.Is(err, saferead.ErrEscapes) || strings.Contains(err.Error(), "path escapes") {
		return errcode.Wrap(CodeOutside, err, "%s leads outside the target root", p)
	}
	return err
}

// ReadFile reads the regular file p of the target (bounded, the final
// component never followed). A missing file is an error satisfying
// errors.Is(err, fs.ErrNotExist).
func (e *Env) ReadFile(p string) ([]byte, error) {
	b, err := e.reads.ReadFile(p, ReadLimit)
	if err != nil {
		return nil, e.wrap(p, err)
	}
	return b, nil
}

// Lstat describes p without following its final component.
func (e *Env) Lstat(p string) (fs.FileInfo, error) {
	fi, err := e.reads.Lstat(p)
	if err != nil {
		return nil, e.wrap(p, err)
	}
	return fi, nil
}

// WriteSpec says what a written file's mode and owner are; nil fields keep
// those of the file being replaced (or 0644 root:root for a new file).
type WriteSpec struct {
	Mode *fs.FileMode
	UID  *int
	GID  *int
}

func (e *Env) requireWrite(p string) error {
	if !e.CanWrite() {
		return errcode.New(CodeResource, "refusing to change %s: this evaluation may not write (Audit mode)", p)
	}
	return writesSupported(p)
}

// backup copies the current content of base in d (the target file p, a
// regular file) under BackupDir/<stamp>/<p>, 0600, before it is replaced
// or removed.
func (e *Env) backup(d *os.Root, base, p string) error {
	f, err := d.OpenFile(base, os.O_RDONLY|oNoFollow|oNonBlock, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errcode.Wrap(CodeResource, e.wrap(p, err), "keep a backup of %s", p)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return errcode.New(CodeResource, "keep a backup of %s: it is not a regular file", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, ReadLimit+1))
	if err != nil {
		return errcode.Wrap(CodeResource, err, "keep a backup of %s", p)
	}
	if len(b) > ReadLimit {
		return errcode.New(CodeResource, "keep a backup of %s: it is larger than %d bytes", p, ReadLimit)
	}
	if e.stamp == "" {
		var rb [4]byte
		_, _ = rand.Read(rb[:])
		e.stamp = e.o.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(rb[:])
	}
	dst := filepath.Join(e.o.BackupDir, e.stamp, filepath.FromSlash(rel(p)))
	if _, err := os.Lstat(dst); err == nil {
		// Several resources of one pass change the same file: keep the
		// version from before the pass.
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return errcode.Wrap(CodeResource, err, "keep a backup of %s", p)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		return errcode.Wrap(CodeResource, err, "keep a backup of %s", p)
	}
	return nil
}

// parentDir opens the directory of the target path p for a change, one
// component at a time, each resolved inside the directory before it
// (os.Root): a symbolic link on the way is followed only down into the
// directory it is in, never up or out of it, and the directory returned
// stays the one resolved whatever is renamed meanwhile. So a user who owns
// a directory on the way (a home, /tmp) cannot send a change elsewhere by
// planting or swapping a link. With create, missing directories are made
// 0755. done releases the directory.
func (e *Env) parentDir(p string, create bool) (d *os.Root, done func(), err error) {
	if err := CheckPath(p); err != nil {
		return nil, nil, err
	}
	cur := e.writes
	release := func() {
		if cur != e.writes {
			cur.Close()
		}
	}
	for _, c := range strings.Split(rel(path.Dir(p)), "/") {
		if c == "" {
			continue
		}
		next, err := cur.OpenRoot(c)
		if create && errors.Is(err, fs.ErrNotExist) {
			if err = cur.Mkdir(c, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
				next, err = cur.OpenRoot(c)
			}
		}
		if err != nil {
			release()
			if w := e.wrap(p, err); w != err {
				return nil, nil, w
			}
			return nil, nil, errcode.Wrap(CodeResource, err, "open the directory of %s", p)
		}
		release()
		cur = next
	}
	return cur, release, nil
}

// BackupPath is the directory of this evaluation's backups ("" until the
// first backup).
func (e *Env) BackupPath() string {
	if e.stamp == "" {
		return ""
	}
	return filepath.Join(e.o.BackupDir, e.stamp)
}

// WriteFile replaces the target file p with data atomically: a temporary
// file beside it, owner and mode set, fsync, rename, fsync of the
// directory. The previous file is backed up first. A link or non-regular
// file at p is refused. Missing parent directories are created 0755.
func (e *Env) WriteFile(p string, data []byte, spec WriteSpec) error {
	if err := e.requireWrite(p); err != nil {
		return err
	}
	d, done, err := e.parentDir(p, true)
	if err != nil {
		return err
	}
	defer done()
	base := path.Base(p)
	mode, uid, gid := fs.FileMode(0o644), 0, 0
	fi, err := d.Lstat(base)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return errcode.New(CodeResource, "refusing to replace %s: it is a %s, not a regular file", p, fi.Mode().Type())
	case err == nil:
		mode = permBits(fi.Mode()) // set-id and sticky bits too
		uid, gid = Owner(fi)
	case errors.Is(err, fs.ErrNotExist):
	default:
		return errcode.Wrap(CodeResource, e.wrap(p, err), "inspect %s", p)
	}
	if spec.Mode != nil {
		mode = *spec.Mode
	}
	if spec.UID != nil {
		uid = *spec.UID
	}
	if spec.GID != nil {
		gid = *spec.GID
	}
	if err := e.backup(d, base, p); err != nil {
		return err
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	tmp := "." + base + ".gc-tmp-" + hex.EncodeToString(rb[:])
	f, err := d.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
	if err != nil {
		return errcode.Wrap(CodeResource, e.wrap(p, err), "write %s", p)
	}
	fail := func(err error) error {
		f.Close()
		_ = d.Remove(tmp)
		return errcode.Wrap(CodeResource, err, "write %s (the previous file is unchanged)", p)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chown(uid, gid); err != nil && os.Geteuid() == 0 {
		return fail(err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = d.Remove(tmp)
		return errcode.Wrap(CodeResource, err, "write %s", p)
	}
	if err := d.Rename(tmp, base); err != nil {
		_ = d.Remove(tmp)
		return errcode.Wrap(CodeResource, e.wrap(p, err), "replace %s", p)
	}
	if df, err := d.Open("."); err == nil {
		_ = df.Sync()
		df.Close()
	}
	return nil
}

// Remove removes the target file p (backed up first); a missing file is
// not an error.
func (e *Env) Remove(p string) error {
	if err := e.requireWrite(p); err != nil {
		return err
	}
	d, done, err := e.parentDir(p, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer done()
	base := path.Base(p)
	fi, err := d.Lstat(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errcode.Wrap(CodeResource, e.wrap(p, err), "inspect %s", p)
	}
	if fi.Mode().IsRegular() {
		if err := e.backup(d, base, p); err != nil {
			return err
		}
	} else if fi.IsDir() {
		return errcode.New(CodeResource, "refusing to remove %s: it is a directory", p)
	}
	if err := d.Remove(base); err != nil {
		return errcode.Wrap(CodeResource, e.wrap(p, err), "remove %s", p)
	}
	return nil
}

// SetOwnerMode changes the owner and mode of the existing regular file or
// directory p without following a final link (nil fields are kept). A
// regular file with more than one hard link is refused.
func (e *Env) SetOwnerMode(p string, spec WriteSpec) error {
	if err := e.requireWrite(p); err != nil {
		return err
	}
	d, done, err := e.parentDir(p, false)
	if err != nil {
		return err
	}
	defer done()
	f, err := d.OpenFile(path.Base(p), os.O_RDONLY|oNoFollow|oNonBlock, 0)
	if err != nil {
		return errcode.Wrap(CodeResource, e.wrap(p, err), "open %s", p)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return errcode.Wrap(CodeResource, err, "inspect %s", p)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return errcode.New(CodeResource, "refusing to change %s: it is a %s", p, fi.Mode().Type())
	}
	if nlink := linkCount(fi); fi.Mode().IsRegular() && nlink > 1 {
		// Another name of the same file may be anywhere on the file
		// system (/etc/shadow linked into a home): its owner and mode are
		// that file's too.
		return errcode.New(CodeResource, "refusing to change the owner or mode of %s: it has %d hard links, so it is also another file (find them with find / -xdev -samefile %s); give the resource content so the file is replaced instead, or remove the other links", p, nlink, p)
	}
	uid, gid := Owner(fi)
	if spec.UID != nil {
		uid = *spec.UID
	}
	if spec.GID != nil {
		gid = *spec.GID
	}
	if spec.UID != nil || spec.GID != nil {
		if err := f.Chown(uid, gid); err != nil {
			return errcode.Wrap(CodeResource, err, "chown %s", p)
		}
	}
	if spec.Mode != nil {
		if err := f.Chmod(*spec.Mode); err != nil {
			return errcode.Wrap(CodeResource, err, "chmod %s", p)
		}
	}
	return nil
}

// Command is a command a resource runs.
type Command struct {
	Path  string
	Args  []string
	Env   []string // added to a minimal environment (PATH, LANG=C)
	Dir   string
	Stdin []byte
}

// CommandResult is a finished command: exit code and bounded output.
type CommandResult struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
}

// limitedBuffer keeps at most n bytes.
type limitedBuffer struct {
	b bytes.Buffer
	n int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

// Run runs a command with the Env's timeout and runner. A command that
// could not start or was killed is an error; a non-zero exit is not.
func (e *Env) Run(ctx context.Context, c Command) (CommandResult, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "LC_ALL=C"}, c.Env...)
	cmd.Dir = c.Dir
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	var stdout, stderr limitedBuffer
	stdout.n, stderr.n = outputLimit, outputLimit
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ownGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	run := e.o.Run
	if run == nil {
		run = (*exec.Cmd).Run
	}
	err := run(cmd)
	res := CommandResult{Stdout: stdout.b.Bytes(), Stderr: stderr.b.Bytes()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s: %w (timeout %s)", c.Path, ctx.Err(), e.o.CommandTimeout)
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		if res.ExitCode < 0 {
			return res, fmt.Errorf("%s: %w", c.Path, err)
		}
		return res, nil
	case err != nil:
		return res, fmt.Errorf("run %s: %w", c.Path, err)
	}
	return res, nil
}

// Account is one line of the target's passwd or group file.
type Account struct {
	Name    string
	ID      int
	GID     int      // passwd: primary group
	Home    string   // passwd
	Shell   string   // passwd
	Members []string // group
}

// Accounts reads the target's /etc/passwd (group=false) or /etc/group.
func (e *Env) Accounts(group bool) ([]Account, error) {
	p := "/etc/passwd"
	if group {
		p = "/etc/group"
	}
	b, err := e.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return ParseAccounts(b, group), nil
}

// ParseAccounts parses passwd (group=false) or group lines; malformed
// lines are skipped.
func ParseAccounts(b []byte, group bool) []Account {
	var out []Account
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if (group && len(f) != 4) || (!group && len(f) != 7) {
			continue
		}
		id, err := strconv.Atoi(f[2])
		if err != nil || id < 0 {
			continue
		}
		a := Account{Name: f[0], ID: id}
		if group {
			if f[3] != "" {
				a.Members = strings.Split(f[3], ",")
			}
		} else {
			a.GID, _ = strconv.Atoi(f[3])
			a.Home, a.Shell = f[5], f[6]
		}
		out = append(out, a)
	}
	return out
}

// LookupID resolves a user (group=false) or group name of the target to
// its numeric id; a decimal string is taken as the id itself.
func (e *Env) LookupID(name string, group bool) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	as, err := e.Accounts(group)
	if err != nil {
		return -1, err
	}
	for _, a := range as {
		if a.Name == name {
			return a.ID, nil
		}
	}
	kind := "user"
	if group {
		kind = "group"
	}
	return -1, errcode.New(CodeResource, "no %s %q in the target's /etc/%s", kind, name, map[bool]string{false: "passwd", true: "group"}[group])
}

// NameOf returns the target's name for a numeric user or group id, or the
// number when it has none.
func (e *Env) NameOf(id int, group bool) string {
	as, err := e.Accounts(group)
	if err == nil {
		for _, a := range as {
			if a.ID == id {
				return a.Name
			}
		}
	}
	return strconv.Itoa(id)
}
