package layout

import (
	"os"
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
