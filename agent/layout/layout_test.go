package layout

import (
	"os"
	"runtime"
	"testing"
)

func TestPathsUnderRoot(t *testing.T) {
	tests := []struct {
		root, prod, want string
	}{
		{"", LocalConfig, "/var/opt/azcmagent/localconfig.json"},
		{"/", TokensDir, "/var/opt/azcmagent/tokens"},
		{"/tmp/r", LocalConfig, "/tmp/r/var/opt/azcmagent/localconfig.json"},
		{"/tmp/r/", ExtensionsDir, "/tmp/r/var/lib/waagent"},
	}
	for _, tt := range tests {
		if got := New(tt.root).Path(tt.prod); got != tt.want {
			t.Errorf("New(%q).Path(%q) = %q, want %q", tt.root, tt.prod, got, tt.want)
		}
	}
	for _, root := range []string{"/", "/tmp/r"} {
		l := New(root)
		if got := l.Prod(l.Path(TokensDir + "/a.key")); got != TokensDir+"/a.key" {
			t.Errorf("root %s: Prod(Path(x)) = %q", root, got)
		}
	}
	if Rel(LocalConfig) != "var/opt/azcmagent/localconfig.json" {
		t.Errorf("Rel = %q", Rel(LocalConfig))
	}
}

func TestEntriesMatchDesign(t *testing.T) {
	want := map[string]struct {
		owner, group string
		mode         os.FileMode
	}{
		"binary":            {"root", "root", 0o755},
		"localconfig":       {"root", "himds", 0o640},
		"agentconfig":       {"root", "himds", 0o640},
		"certs-dir":         {"himds", "himds", 0o700},
		"machine-key":       {"himds", "himds", 0o600},
		"tokens-dir":        {"himds", "himds", 0o710},
		"token-key":         {"himds", "himds", 0o640},
		"trust-dir":         {"root", "root", 0o755},
		"trust-file":        {"root", "root", 0o644},
		"log-dir":           {"himds", "himds", 0o750},
		"guestconfig-dir":   {"root", "root", 0o700},
		"extension-dir":     {"root", "root", 0o700},
		"unit-himdsd":       {"root", "root", 0o644},
		"unit-arcproxyd":    {"root", "root", 0o644},
		"proxy-credentials": {"root", "arcproxy", 0o640},
	}
	for id, w := range want {
		e, ok := Lookup(id)
		if !ok {
			t.Errorf("missing layout entry %s", id)
			continue
		}
		if e.Owner != w.owner || e.Group != w.group || e.Mode != w.mode {
			t.Errorf("%s = %s:%s %o, want %s:%s %o", id, e.Owner, e.Group, e.Mode, w.owner, w.group, w.mode)
		}
	}
	seen := map[string]bool{}
	for _, e := range Entries() {
		if seen[e.ID] {
			t.Errorf("duplicate id %s", e.ID)
		}
		seen[e.ID] = true
	}
}

func TestWindowsPaths(t *testing.T) {
	env := WindowsEnv{ProgramData: `C:\ProgramData`, ProgramFiles: `C:\Program Files`, SystemDrive: `C:`}
	tests := []struct {
		root, prod, want string
	}{
		{"", LocalConfig, `C:\ProgramData\AzureConnectedMachineAgent\Config\localconfig.json`},
		{"/", AgentConfig, `C:\ProgramData\AzureConnectedMachineAgent\Config\agentconfig.json`},
		{"", TokensDir + "/a.key", `C:\ProgramData\AzureConnectedMachineAgent\Tokens\a.key`},
		{"", StateDir, `C:\ProgramData\AzureConnectedMachineAgent`},
		{"", Binary, `C:\Program Files\AzureConnectedMachineAgent\arcagent.exe`},
		{"", ExtensionsDir + "/Contoso.Backup-1.0", `C:\Packages\Plugins\Contoso.Backup-1.0`},
		{"", GCReportsDir, `C:\ProgramData\GuestConfig\gc_agent\reports`},
		{"", UnitDir, `\etc\systemd\system`},
		{`D:\img\`, LocalConfig, `D:\img\ProgramData\AzureConnectedMachineAgent\Config\localconfig.json`},
	}
	for _, tt := range tests {
		if got := NewWindows(tt.root, env).Path(tt.prod); got != tt.want {
			t.Errorf("NewWindows(%q).Path(%q) = %q, want %q", tt.root, tt.prod, got, tt.want)
		}
	}
	// %ProgramData% elsewhere moves the agent's folder with it.
	l := NewWindows("", WindowsEnv{ProgramData: `E:\Data\`, ProgramFiles: `C:\Program Files`, SystemDrive: `C:`})
	if got, want := l.LocalConfig(), `E:\Data\AzureConnectedMachineAgent\Config\localconfig.json`; got != want {
		t.Errorf("LocalConfig = %q, want %q", got, want)
	}
	if !l.IsWindows() || !l.IsSystemRoot() || (runtime.GOOS != "windows" && New("/").IsWindows()) {
		t.Errorf("IsWindows/IsSystemRoot wrong")
	}
}

func TestWindowsEnvFromOS(t *testing.T) {
	t.Setenv("ProgramData", "")
	t.Setenv("ProgramFiles", `D:\Apps`)
	t.Setenv("SystemDrive", "")
	e := WindowsEnvFromOS()
	if e.ProgramData != `C:\ProgramData` || e.ProgramFiles != `D:\Apps` || e.SystemDrive != "C:" {
		t.Errorf("WindowsEnvFromOS = %+v", e)
	}
}
