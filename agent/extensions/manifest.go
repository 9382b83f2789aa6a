package extensions

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/arcagent/arcagent/internal/saferead"
	"github.com/arcagent/arcagent/signing"
)

// HandlerManifestName is the file every package holds at its root.
const HandlerManifestName = "HandlerManifest.json"

const maxHandlerManifest = 64 << 10

// HandlerManifest is the Azure VM extension handler manifest: a JSON array
// holding one object with "version" and "handlerManifest".
type HandlerManifest struct {
	Version         json.Number     `json:"version"`
	HandlerManifest HandlerCommands `json:"handlerManifest"`
	ResourceLimits  json.RawMessage `json:"resourceLimits,omitempty"`
}

// HandlerCommands are the lifecycle commands and flags of a handler.
type HandlerCommands struct {
	InstallCommand     string `json:"installCommand"`
	UninstallCommand   string `json:"uninstallCommand"`
	UpdateCommand      string `json:"updateCommand"`
	EnableCommand      string `json:"enableCommand"`
	DisableCommand     string `json:"disableCommand"`
	RebootAfterInstall bool   `json:"rebootAfterInstall"`
	ReportHeartbeat    bool   `json:"reportHeartbeat"`
	UpdateMode         string `json:"updateMode,omitempty"`
}

// Update modes of the handler format.
const (
	UpdateWithInstall    = "UpdateWithInstall"
	UpdateWithoutInstall = "UpdateWithoutInstall"
)

// Commands returns the five lifecycle commands by their JSON names.
func (h *HandlerManifest) Commands() map[string]string {
	c := h.HandlerManifest
	return map[string]string{
		"installCommand":   c.InstallCommand,
		"uninstallCommand": c.UninstallCommand,
		"updateCommand":    c.UpdateCommand,
		"enableCommand":    c.EnableCommand,
		"disableCommand":   c.DisableCommand,
	}
}

// ParseHandlerManifest parses and validates HandlerManifest.json: one
// element, version 1 or 1.0 (number or string), all five commands present,
// updateMode empty or one of UpdateWithInstall/UpdateWithoutInstall.
// Commands are checked for form only (see CheckCommandFiles).
func ParseHandlerManifest(data []byte) (*HandlerManifest, error) {
	bad := func(format string, args ...any) error {
		return fail(CodeBadHandlerManifest, nil, format, args...)
	}
	if len(data) > maxHandlerManifest {
		return nil, bad("%s is larger than %d bytes", HandlerManifestName, maxHandlerManifest)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // BOM written by some Windows editors
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fail(CodeBadHandlerManifest, err, "%s must be a JSON array holding one handler object", HandlerManifestName)
	}
	if len(raw) != 1 {
		return nil, bad("%s holds %d handler objects, want exactly 1", HandlerManifestName, len(raw))
	}
	var probe struct {
		Version         json.RawMessage  `json:"version"`
		HandlerManifest *json.RawMessage `json:"handlerManifest"`
	}
	if err := json.Unmarshal(raw[0], &probe); err != nil {
		return nil, fail(CodeBadHandlerManifest, err, "%s: the handler object is not valid", HandlerManifestName)
	}
	if probe.HandlerManifest == nil {
		return nil, bad("%s has no \"handlerManifest\" object", HandlerManifestName)
	}
	var version string
	switch v := strings.TrimSpace(string(probe.Version)); {
	case v == "":
		return nil, bad("%s has no \"version\" (use 1.0)", HandlerManifestName)
	case strings.HasPrefix(v, `"`):
		if err := json.Unmarshal(probe.Version, &version); err != nil {
			return nil, bad("%s: version is not valid", HandlerManifestName)
		}
	default:
		version = v
	}
	if version != "1" && version != "1.0" {
		return nil, bad("%s version is %s, only 1.0 is supported", HandlerManifestName, version)
	}
	var hm HandlerManifest
	var cmds HandlerCommands
	if err := json.Unmarshal(*probe.HandlerManifest, &cmds); err != nil {
		return nil, fail(CodeBadHandlerManifest, err, "%s: handlerManifest has a field of the wrong type", HandlerManifestName)
	}
	hm.Version = json.Number("1.0")
	hm.HandlerManifest = cmds
	var rl struct {
		ResourceLimits json.RawMessage `json:"resourceLimits"`
	}
	_ = json.Unmarshal(raw[0], &rl)
	hm.ResourceLimits = rl.ResourceLimits
	for _, name := range []string{"installCommand", "uninstallCommand", "updateCommand", "enableCommand", "disableCommand"} {
		c := hm.Commands()[name]
		if strings.TrimSpace(c) == "" {
			return nil, bad("%s: %s is missing or empty", HandlerManifestName, name)
		}
		if len(c) > 4096 || strings.ContainsAny(c, "\x00\n\r") {
			return nil, bad("%s: %s must be one line of at most 4096 characters", HandlerManifestName, name)
		}
	}
	switch cmds.UpdateMode {
	case "", UpdateWithInstall, UpdateWithoutInstall:
	default:
		return nil, bad("%s: updateMode %q must be %s or %s", HandlerManifestName, cmds.UpdateMode, UpdateWithInstall, UpdateWithoutInstall)
	}
	return &hm, nil
}

// CommandProgram returns the program a command runs when it is a path
// relative to the extension directory ("bin/run.sh enable" → "bin/run.sh"),
// cleaned, or "" when it runs something else (an absolute path or a bare
// name found on PATH such as "bash").
func CommandProgram(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return ""
	}
	prog := f[0]
	if strings.HasPrefix(prog, "/") || !strings.Contains(prog, "/") {
		return ""
	}
	return path.Clean(prog)
}

// CheckCommandFiles checks that every command naming a relative program
// names a file of the package that stays inside it. exists reports whether
// a slash-separated path is a regular file of the package and whether it is
// executable.
func (h *HandlerManifest) CheckCommandFiles(exists func(p string) (ok, exec bool)) error {
	for _, name := range []string{"installCommand", "uninstallCommand", "updateCommand", "enableCommand", "disableCommand"} {
		prog := CommandProgram(h.Commands()[name])
		if prog == "" {
			continue
		}
		if prog == ".." || strings.HasPrefix(prog, "../") {
			return fail(CodeBadHandlerManifest, nil, "%s: %s runs %s, which is outside the package", HandlerManifestName, name, prog)
		}
		ok, exec := exists(prog)
		if !ok {
			return fail(CodeBadHandlerManifest, nil, "%s: %s runs %s, which is not a file of the package", HandlerManifestName, name, prog)
		}
		if !exec {
			return fail(CodeBadHandlerManifest, nil, "%s: %s runs %s, which is not executable (chmod +x it)", HandlerManifestName, name, prog)
		}
	}
	return nil
}

// ReadPackageManifest opens a package zip and returns its validated
// HandlerManifest.json (commands checked against the zip's files).
func ReadPackageManifest(zipPath string) (*HandlerManifest, error) {
	// A path the user names: a FIFO or device is refused, never waited on.
	f, err := saferead.OpenFile(zipPath)
	if err != nil {
		return nil, fail(signing.CodeFileAccess, err, "open %s", zipPath)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fail(signing.CodeFileAccess, err, "inspect %s", zipPath)
	}
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil && err != zip.ErrInsecurePath {
		return nil, fail(CodeBadHandlerManifest, err, "%s is not a zip archive", zipPath)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	mf, ok := files[HandlerManifestName]
	if !ok {
		return nil, fail(CodeBadHandlerManifest, nil, "%s has no %s at its root", zipPath, HandlerManifestName)
	}
	if mf.UncompressedSize64 > maxHandlerManifest {
		return nil, fail(CodeBadHandlerManifest, nil, "%s is larger than %d bytes", HandlerManifestName, maxHandlerManifest)
	}
	rc, err := mf.Open()
	if err != nil {
		return nil, fail(CodeBadHandlerManifest, err, "open %s", HandlerManifestName)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxHandlerManifest+1))
	if err != nil {
		return nil, fail(CodeBadHandlerManifest, err, "read %s", HandlerManifestName)
	}
	hm, err := ParseHandlerManifest(data)
	if err != nil {
		return nil, err
	}
	err = hm.CheckCommandFiles(func(p string) (bool, bool) {
		f, ok := files[p]
		if !ok || !f.Mode().IsRegular() {
			return false, false
		}
		return true, f.Mode().Perm()&0o111 != 0
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zipPath, err)
	}
	return hm, nil
}
