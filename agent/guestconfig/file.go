package guestconfig

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

func init() { Register("file", decodeFile) }

// FileSpec is the body of a file resource.
type FileSpec struct {
	Path string `yaml:"path"`
	// State is present (default) or absent.
	State string `yaml:"state"`
	// Content, SHA256 or Source (a file of the package) pin the content;
	// none of them leaves it alone. Set needs Content or Source.
	Content *string `yaml:"content"`
	SHA256  string  `yaml:"sha256"`
	Source  string  `yaml:"source"`
	Owner   string  `yaml:"owner"`
	Group   string  `yaml:"group"`
	// Mode is the exact mode; MaxMode the most permissive one allowed
	// (set clears the extra bits). Both octal strings ("0640").
	Mode    string `yaml:"mode"`
	MaxMode string `yaml:"maxMode"`
}

type fileResource struct {
	s       FileSpec
	content []byte // nil: not pinned by content
	sum     string // "" : not pinned
	mode    *fs.FileMode
	maxMode *fs.FileMode
}

// ParseMode parses an octal permission string such as "0640".
func parseOctal(s string) (*fs.FileMode, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return nil, fmt.Errorf("mode %q: use an octal mode such as \"0640\"", s)
	}
	m := fs.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return &m, nil
}

// octal renders a mode as "0640" (with the set-id and sticky bits).
func octal(m fs.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		n |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	return fmt.Sprintf("%04o", n)
}

func permBits(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

func decodeFile(body *yaml.Node, c CompileContext) (Resource, error) {
	var s FileSpec
	if err := DecodeBody(body, &s); err != nil {
		return nil, err
	}
	if err := CheckPath(s.Path); err != nil {
		return nil, err
	}
	r := &fileResource{s: s}
	switch s.State {
	case "", "present":
		r.s.State = "present"
	case "absent":
		if s.Content != nil || s.SHA256 != "" || s.Source != "" || s.Owner != "" || s.Group != "" || s.Mode != "" || s.MaxMode != "" {
			return nil, errors.New("state absent takes only path")
		}
	default:
		return nil, fmt.Errorf("state %q: use present or absent", s.State)
	}
	n := 0
	if s.Content != nil {
		n++
		r.content = []byte(*s.Content)
	}
	if s.Source != "" {
		n++
		b, ok := c.Files[s.Source]
		if !ok {
			return nil, fmt.Errorf("source %q is not a file of the package", s.Source)
		}
		r.content = b
	}
	if s.SHA256 != "" {
		n++
		if b, err := hex.DecodeString(s.SHA256); err != nil || len(b) != 32 {
			return nil, fmt.Errorf("sha256 %q is not a hex SHA-256 digest", s.SHA256)
		}
		r.sum = strings.ToLower(s.SHA256)
	}
	if n > 1 {
		return nil, errors.New("give at most one of content, source and sha256")
	}
	if r.content != nil {
		h := sha256.Sum256(r.content)
		r.sum = hex.EncodeToString(h[:])
	}
	var err error
	if r.mode, err = parseOctal(s.Mode); err != nil {
		return nil, err
	}
	if r.maxMode, err = parseOctal(s.MaxMode); err != nil {
		return nil, err
	}
	if r.mode != nil && r.maxMode != nil {
		return nil, errors.New("give mode or maxMode, not both")
	}
	return r, nil
}

func (r *fileResource) Get(ctx context.Context, env *Env) (Evidence, error) {
	obs, err := r.Test(ctx, env)
	return obs.Evidence, err
}

func (r *fileResource) Test(_ context.Context, env *Env) (Observation, error) {
	ev := Evidence{"path": r.s.Path}
	fi, err := env.Lstat(r.s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		ev["exists"] = "false"
		if r.s.State == "absent" {
			return Observation{Compliant: true, Evidence: ev}, nil
		}
		return Observation{Reason: r.s.Path + " does not exist", Evidence: ev}, nil
	}
	if err != nil {
		return Observation{Evidence: ev}, err
	}
	ev["exists"] = "true"
	ev["type"] = fileType(fi.Mode())
	if r.s.State == "absent" {
		return Observation{Reason: r.s.Path + " exists, want absent", Evidence: ev}, nil
	}
	if !fi.Mode().IsRegular() {
		return Observation{Reason: fmt.Sprintf("%s is a %s, want a regular file", r.s.Path, ev["type"]), Evidence: ev}, nil
	}
	uid, gid := Owner(fi)
	ev["mode"] = octal(fi.Mode())
	ev["owner"] = env.NameOf(uid, false)
	ev["group"] = env.NameOf(gid, true)
	ev["size"] = strconv.FormatInt(fi.Size(), 10)
	var reasons []string
	if r.sum != "" {
		b, err := env.ReadFile(r.s.Path)
		if err != nil {
			return Observation{Evidence: ev}, err
		}
		h := sha256.Sum256(b)
		ev["sha256"] = hex.EncodeToString(h[:])
		if ev["sha256"] != r.sum {
			reasons = append(reasons, "content differs (sha256 "+ev["sha256"][:12]+"…, want "+r.sum[:12]+"…)")
		}
	}
	if r.s.Owner != "" && !sameAccount(env, r.s.Owner, uid, false) {
		reasons = append(reasons, fmt.Sprintf("owner is %s, want %s", ev["owner"], r.s.Owner))
	}
	if r.s.Group != "" && !sameAccount(env, r.s.Group, gid, true) {
		reasons = append(reasons, fmt.Sprintf("group is %s, want %s", ev["group"], r.s.Group))
	}
	cur := permBits(fi.Mode())
	if r.mode != nil && cur != *r.mode {
		reasons = append(reasons, fmt.Sprintf("mode is %s, want %s", octal(cur), octal(*r.mode)))
	}
	if r.maxMode != nil && cur&^*r.maxMode != 0 {
		reasons = append(reasons, fmt.Sprintf("mode is %s, want at most %s", octal(cur), octal(*r.maxMode)))
	}
	if len(reasons) > 0 {
		return Observation{Reason: r.s.Path + ": " + strings.Join(reasons, "; "), Evidence: ev}, nil
	}
	return Observation{Compliant: true, Evidence: ev}, nil
}

func sameAccount(env *Env, want string, have int, group bool) bool {
	id, err := env.LookupID(want, group)
	return err == nil && id == have
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

func (r *fileResource) Set(ctx context.Context, env *Env) error {
	if r.s.State == "absent" {
		return env.Remove(r.s.Path)
	}
	spec := WriteSpec{Mode: r.mode}
	if r.s.Owner != "" {
		id, err := env.LookupID(r.s.Owner, false)
		if err != nil {
			return err
		}
		spec.UID = &id
	}
	if r.s.Group != "" {
		id, err := env.LookupID(r.s.Group, true)
		if err != nil {
			return err
		}
		spec.GID = &id
	}
	fi, err := env.Lstat(r.s.Path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if r.maxMode != nil {
		m := *r.maxMode &^ fs.ModeSetuid &^ fs.ModeSetgid &^ fs.ModeSticky
		if exists {
			m = permBits(fi.Mode()) & *r.maxMode
		}
		spec.Mode = &m
	}
	needContent := !exists
	if exists && r.sum != "" {
		b, err := env.ReadFile(r.s.Path)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		needContent = hex.EncodeToString(h[:]) != r.sum
	}
	if exists && !fi.Mode().IsRegular() {
		return fmt.Errorf("refusing to replace %s: it is a %s", r.s.Path, fileType(fi.Mode()))
	}
	if needContent {
		if r.content == nil {
			if !exists && r.sum == "" {
				return fmt.Errorf("%s does not exist and the resource gives no content to create it with", r.s.Path)
			}
			return fmt.Errorf("%s: the resource pins the content by sha256 only, so it cannot be written; give content or source", r.s.Path)
		}
		return env.WriteFile(r.s.Path, r.content, spec)
	}
	_ = ctx
	return env.SetOwnerMode(r.s.Path, spec)
}
