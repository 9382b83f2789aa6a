package handler

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

// Extension is one installed extension tree and where its handler writes.
type Extension struct {
	Publisher, Type, Version string
	Dir                      string // <ExtensionsDir>/<Publisher>.<Type>-<Version>
	LogDir                   string // <ExtensionLogsDir>/<Publisher>.<Type>-<Version>
	Manifest                 *extensions.HandlerManifest
}

// New returns the Extension of an installed package: its tree under
// extensionsDir and its log folder under logsDir (layout's ExtensionsDir
// and ExtensionLogsDir), both named <Publisher>.<Type>-<Version>.
func New(extensionsDir, logsDir, publisher, typ, version string, m *extensions.HandlerManifest) Extension {
	e := Extension{Publisher: publisher, Type: typ, Version: version, Manifest: m}
	e.Dir = filepath.Join(extensionsDir, e.FullName())
	e.LogDir = filepath.Join(logsDir, e.FullName())
	return e
}

// Name is "<Publisher>.<Type>", the handler name of the Azure format.
func (e Extension) Name() string { return e.Publisher + "." + e.Type }

// FullName is "<Publisher>.<Type>-<Version>", the name of the extension's
// directory and of its log folder.
func (e Extension) FullName() string { return e.Name() + "-" + e.Version }

// Files of an extension tree, relative to Extension.Dir.
const (
	HandlerEnvironmentName = "HandlerEnvironment.json"
	ConfigDirName          = "config"
	StatusDirName          = "status"
	HeartbeatName          = "heartbeat.log"
)

// ConfigDir is Dir/config, where the numbered settings files are written.
func (e Extension) ConfigDir() string { return filepath.Join(e.Dir, ConfigDirName) }

// StatusDir is Dir/status, where the handler writes <seq>.status.
func (e Extension) StatusDir() string { return filepath.Join(e.Dir, StatusDirName) }

// SettingsFile is Dir/config/<seq>.settings.
func (e Extension) SettingsFile(seq int) string {
	return filepath.Join(e.ConfigDir(), strconv.Itoa(seq)+".settings")
}

// StatusFile is Dir/status/<seq>.status.
func (e Extension) StatusFile(seq int) string {
	return filepath.Join(e.StatusDir(), strconv.Itoa(seq)+".status")
}

// HandlerEnvironment is one element of HandlerEnvironment.json, with the
// field set waagent writes on Linux (eventsFolder, which waagent adds only
// when its telemetry pipeline is on, is not written).
type HandlerEnvironment struct {
	Version            json.Number          `json:"version"`
	Name               string               `json:"name"`
	HandlerEnvironment HandlerEnvironmentV1 `json:"handlerEnvironment"`
}

// HandlerEnvironmentV1 holds the folders of the handler environment.
type HandlerEnvironmentV1 struct {
	LogFolder     string `json:"logFolder"`
	ConfigFolder  string `json:"configFolder"`
	StatusFolder  string `json:"statusFolder"`
	HeartbeatFile string `json:"heartbeatFile"`
}

// Environment returns the content of HandlerEnvironment.json for ext (an
// array holding one element, as waagent writes it).
func (e Extension) Environment() []HandlerEnvironment {
	return []HandlerEnvironment{{
		Version: json.Number("1.0"),
		Name:    e.Name(),
		HandlerEnvironment: HandlerEnvironmentV1{
			LogFolder:     e.LogDir,
			ConfigFolder:  e.ConfigDir(),
			StatusFolder:  e.StatusDir(),
			HeartbeatFile: filepath.Join(e.Dir, HeartbeatName),
		},
	}}
}

func (e Extension) check() error {
	for _, part := range []string{e.Publisher, e.Type, e.Version} {
		// The parts name directories and a cgroup: one plain path element each.
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "/\x00\n\r") {
			return fail(CodeHandlerFiles, nil, "extension %q: publisher, type and version must be non-empty names without '/', NUL or line breaks", e.FullName())
		}
	}
	if !filepath.IsAbs(e.Dir) || !filepath.IsAbs(e.LogDir) {
		return fail(CodeHandlerFiles, nil, "extension %s: directory %q and log directory %q must be absolute paths", e.FullName(), e.Dir, e.LogDir)
	}
	return nil
}

// Prepare creates Dir/config and Dir/status (0700) and LogDir (0700, with
// missing parents 0700), and writes Dir/HandlerEnvironment.json atomically
// (0600). Existing directories are kept, their mode set to 0700; a symbolic
// link or a file where a directory belongs is refused. Dir itself must
// exist (the installed tree). Prepare is idempotent.
func Prepare(ext Extension) error {
	if err := ext.check(); err != nil {
		return err
	}
	if fi, err := os.Lstat(ext.Dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return fail(CodeHandlerFiles, err, "extension directory %s is not usable", ext.Dir)
	}
	if err := os.MkdirAll(filepath.Dir(ext.LogDir), 0o700); err != nil {
		return fail(CodeHandlerFiles, err, "create the parent of log directory %s", ext.LogDir)
	}
	for _, d := range []string{ext.ConfigDir(), ext.StatusDir(), ext.LogDir} {
		if err := privateDir(d); err != nil {
			return fail(CodeHandlerFiles, err, "prepare %s", d)
		}
	}
	data, err := json.MarshalIndent(ext.Environment(), "", "  ")
	if err != nil {
		return fail(CodeHandlerFiles, err, "encode %s", HandlerEnvironmentName)
	}
	path := filepath.Join(ext.Dir, HandlerEnvironmentName)
	err = atomicfile.WriteFile(path, append(data, '\n'), atomicfile.WriteOptions{
		Mode: 0o600, Owner: atomicfile.Owner{User: "root", Group: "root"}, Enforce: true})
	if err != nil {
		return fail(CodeHandlerFiles, err, "write %s", path)
	}
	return nil
}
