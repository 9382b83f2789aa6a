package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/errcode"
)

func codeOf(err error) errcode.Code {
	var e *errcode.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestRegistryCoversDesign(t *testing.T) {
	want := []string{
		"audit.upload.enabled", "audit.upload.interval", "automaticupgrade.enabled", "config.mode", "connection.type", "extensions.agent.cpulimit",
		"extensions.allowlist", "extensions.blocklist", "extensions.enabled",
		"guestconfiguration.agent.cpulimit", "guestconfiguration.enabled",
		"incomingconnections.enabled", "incomingconnections.ports", "proxy.allowed", "proxy.bypass", "proxy.url",
	}
	if got := Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, p := range Properties() {
		if p.Help == "" || p.AllowedText() == "" {
			t.Errorf("%s: missing help or allowed text", p.Name)
		}
		// The default must itself be a valid value.
		if _, _, err := ParseValue(p, FormatValue(p.Default)); err != nil && !p.Type.IsList() {
			t.Errorf("%s: default %v does not parse: %v", p.Name, p.Default, err)
		}
	}
}

func TestParseValue(t *testing.T) {
	tests := []struct {
		prop    string
		in      string
		want    any
		wantErr bool
		warn    bool
	}{
		{IncomingEnabled, "false", false, false, false},
		{IncomingEnabled, "TRUE", true, false, false},
		{IncomingEnabled, "\u201cfalse\u201d", false, false, true},
		{IncomingEnabled, "yes", nil, true, false},
		{IncomingEnabled, "", nil, true, false},
		{IncomingPorts, "22, 3389", []string{"22", "3389"}, false, false},
		{IncomingPorts, "22,22,0022", []string{"22"}, false, false},
		{IncomingPorts, "0", nil, true, false},
		{IncomingPorts, "65536", nil, true, false},
		{IncomingPorts, "ssh", nil, true, false},
		{IncomingPorts, "", []string{}, false, false},
		{ConnectionType, "Gateway", "gateway", false, false},
		{ConnectionType, "direct", "direct", false, false},
		{ConnectionType, "tunnel", nil, true, false},
		{ProxyURL, "http://proxy.contoso.com:3128", "http://proxy.contoso.com:3128", false, false},
		{ProxyURL, "https://[::1]:8443", "https://[::1]:8443", false, false},
		{ProxyURL, "", "", false, false},
		{ProxyURL, "socks5://proxy:1080", nil, true, false},
		{ProxyURL, "http://proxy", nil, true, false},
		{ProxyURL, "http://proxy:99999", nil, true, false},
		{ProxyURL, "http://proxy:3128/path", nil, true, false},
		{ProxyURL, "proxy:3128", nil, true, false},
		{ProxyBypass, "arm, aad", []string{"ARM", "AAD"}, false, false},
		{ProxyBypass, "ArcData,AMA,Arc", []string{"ArcData", "AMA", "Arc"}, false, false},
		{ProxyBypass, "Storage", nil, true, false},
		{ProxyAllowed, "pkg.contoso.com, *.blob.core.windows.net:443,10.0.0.5:8443", []string{"pkg.contoso.com:443", "*.blob.core.windows.net:443", "10.0.0.5:8443"}, false, false},
		{ProxyAllowed, "PKG.Contoso.COM.,pkg.contoso.com:443", []string{"pkg.contoso.com:443"}, false, false},
		{ProxyAllowed, "[2001:db8::1]:8443,[::ffff:10.0.0.1]", []string{"[2001:db8::1]:8443", "10.0.0.1:443"}, false, false},
		{ProxyAllowed, "https://pkg.contoso.com", nil, true, false},
		{ProxyAllowed, "pkg.contoso.com:0", nil, true, false},
		{ProxyAllowed, "pkg.contoso.com:0443", nil, true, false},
		{ProxyAllowed, "*.com", nil, true, false},
		{ProxyAllowed, "a.*.com", nil, true, false},
		{ProxyAllowed, "2130706433", nil, true, false},
		{ProxyAllowed, "0x7f.1", nil, true, false},
		{ProxyAllowed, "user@host", nil, true, false},
		{ProxyAllowed, "fe80::1%eth0", nil, true, false},
		{ExtAllowlist, "Microsoft.Azure.Monitor/AzureMonitorWindowsAgent,Microsoft.Azure.AzureDefenderForServers/MDE.Windows",
			[]string{"Microsoft.Azure.Monitor/AzureMonitorWindowsAgent", "Microsoft.Azure.AzureDefenderForServers/MDE.Windows"}, false, false},
		{ExtAllowlist, "\u201cMicrosoft.Azure.Monitor/AzureMonitorWindowsAgent, Microsoft.Azure.AzureDefenderForServers/MDE.Windows\u201d",
			[]string{"Microsoft.Azure.Monitor/AzureMonitorWindowsAgent", "Microsoft.Azure.AzureDefenderForServers/MDE.Windows"}, false, true},
		{ExtAllowlist, "allow/none", []string{AllowNone}, false, false},
		{ExtAllowlist, "Allow/None,Contoso/Backup", nil, true, false},
		{ExtAllowlist, "Contoso/Backup,contoso/backup", []string{"Contoso/Backup"}, false, false},
		{ExtAllowlist, "NoSlash", nil, true, false},
		{ExtAllowlist, "a/b/c", nil, true, false},
		{ExtAllowlist, "../x", nil, true, false},
		{ExtBlocklist, "Microsoft.Compute/CustomScriptExtension", []string{"Microsoft.Compute/CustomScriptExtension"}, false, false},
		{ExtBlocklist, "Allow/None", nil, true, false},
		{ExtEnabled, "false", false, false, false},
		{ExtEnabled, "0", nil, true, false},
		{GCEnabled, "False", false, false, false},
		{GCEnabled, "off", nil, true, false},
		{GCCPULimit, "1", 1, false, false},
		{GCCPULimit, "100", 100, false, false},
		{GCCPULimit, "0", nil, true, false},
		{GCCPULimit, "101", nil, true, false},
		{GCCPULimit, "5.5", nil, true, false},
		{ExtCPULimit, "50", 50, false, false},
		{ExtCPULimit, "-1", nil, true, false},
		{ConfigMode, "Monitor", "monitor", false, false},
		{ConfigMode, "full", "full", false, false},
		{ConfigMode, "audit", nil, true, false},
		{AutoUpgradeEnable, "true", true, false, false},
		{AutoUpgradeEnable, "enabled", nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.prop+"="+tt.in, func(t *testing.T) {
			p, ok := Lookup(tt.prop)
			if !ok {
				t.Fatalf("unknown property %s", tt.prop)
			}
			got, warnings, err := ParseValue(p, tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseValue(%q) = %v, want an error", tt.in, got)
				}
				if codeOf(err) != errcode.InvalidValue {
					t.Errorf("error code = %q, want %s", codeOf(err), errcode.InvalidValue)
				}
				if !strings.Contains(err.Error(), p.Name) || !strings.Contains(err.Error(), "allowed:") {
					t.Errorf("error %q does not name the property and the allowed values", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseValue(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseValue(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if (len(warnings) > 0) != tt.warn {
				t.Errorf("warnings = %v, want warning: %v", warnings, tt.warn)
			}
		})
	}
}

func TestApply(t *testing.T) {
	type step struct {
		c        Change
		wantCode errcode.Code
	}
	tests := []struct {
		name  string
		steps []step
		prop  string
		want  any
	}{
		{"set replaces a list", []step{
			{Change{OpSet, ExtAllowlist, "A/B,C/D"}, ""},
			{Change{OpSet, ExtAllowlist, "E/F"}, ""},
		}, ExtAllowlist, []string{"E/F"}},
		{"add appends and keeps the original spelling", []step{
			{Change{OpSet, ExtAllowlist, "Contoso/Backup"}, ""},
			{Change{OpAdd, ExtAllowlist, "CONTOSO/BACKUP, Fabrikam/Agent"}, ""},
		}, ExtAllowlist, []string{"Contoso/Backup", "Fabrikam/Agent"}},
		{"remove is case-insensitive", []step{
			{Change{OpSet, ExtBlocklist, "Contoso/Backup,Fabrikam/Agent"}, ""},
			{Change{OpRemove, ExtBlocklist, "contoso/backup"}, ""},
		}, ExtBlocklist, []string{"Fabrikam/Agent"}},
		{"remove the last item leaves an empty list", []step{
			{Change{OpSet, IncomingPorts, "22"}, ""},
			{Change{OpRemove, IncomingPorts, "22"}, ""},
		}, IncomingPorts, []string{}},
		{"add to a scalar is refused", []step{
			{Change{OpAdd, IncomingEnabled, "false"}, errcode.NotAList},
		}, IncomingEnabled, true},
		{"remove from a scalar is refused", []step{
			{Change{OpRemove, GCCPULimit, "5"}, errcode.NotAList},
		}, GCCPULimit, 5},
		{"unknown property", []step{
			{Change{OpSet, "extensions.allowedlist", "A/B"}, errcode.UnknownProperty},
		}, ExtAllowlist, []string{}},
		{"invalid value changes nothing", []step{
			{Change{OpSet, GCCPULimit, "20"}, ""},
			{Change{OpSet, GCCPULimit, "200"}, errcode.InvalidValue},
		}, GCCPULimit, 20},
		{"invalid add changes nothing", []step{
			{Change{OpSet, ExtAllowlist, "A/B"}, ""},
			{Change{OpAdd, ExtAllowlist, "Allow/None"}, errcode.InvalidValue},
		}, ExtAllowlist, []string{"A/B"}},
		{"clear restores the default", []step{
			{Change{OpSet, IncomingEnabled, "false"}, ""},
			{Change{OpClear, IncomingEnabled, ""}, ""},
		}, IncomingEnabled, true},
		{"property names are case-insensitive", []step{
			{Change{OpSet, "Extensions.AllowList", "A/B"}, ""},
		}, ExtAllowlist, []string{"A/B"}},
		{"monitor mode locks the allowlist", []step{
			{Change{OpSet, ExtAllowlist, "A/B"}, ""},
			{Change{OpSet, ConfigMode, "monitor"}, ""},
			{Change{OpSet, ExtAllowlist, "C/D"}, errcode.MonitorModeLock},
			{Change{OpAdd, ExtAllowlist, "C/D"}, errcode.MonitorModeLock},
			{Change{OpClear, ExtAllowlist, ""}, errcode.MonitorModeLock},
		}, ExtAllowlist, []string{"A/B"}},
		{"monitor mode locks the blocklist", []step{
			{Change{OpSet, ConfigMode, "monitor"}, ""},
			{Change{OpRemove, ExtBlocklist, "C/D"}, errcode.MonitorModeLock},
		}, ExtBlocklist, []string{}},
		{"lists unlock after a return to full mode", []step{
			{Change{OpSet, ConfigMode, "monitor"}, ""},
			{Change{OpSet, ConfigMode, "full"}, ""},
			{Change{OpSet, ExtBlocklist, "C/D"}, ""},
		}, ExtBlocklist, []string{"C/D"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSettings()
			for i, st := range tt.steps {
				before, _ := s.Marshal()
				_, err := s.Apply(st.c)
				if got := codeOf(err); got != st.wantCode || (st.wantCode == "" && err != nil) {
					t.Fatalf("step %d %v: err = %v, want code %q", i, st.c, err, st.wantCode)
				}
				if err != nil {
					if !strings.Contains(err.Error(), st.c.Property) && st.wantCode != errcode.UnknownProperty {
						t.Errorf("step %d: error %q does not name the property", i, err)
					}
					after, _ := s.Marshal()
					if string(before) != string(after) {
						t.Errorf("step %d: a refused change modified the settings", i)
					}
				}
			}
			if got := s.Value(tt.prop); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.prop, got, tt.want)
			}
		})
	}
}

func TestMonitorModeEffective(t *testing.T) {
	s := NewSettings()
	for _, c := range []Change{
		{OpSet, ExtAllowlist, "Contoso/Backup"},
		{OpSet, ExtBlocklist, "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"},
		{OpSet, IncomingEnabled, "true"},
		{OpSet, ConfigMode, "monitor"},
	} {
		if _, err := s.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	if s.EffectiveBool(IncomingEnabled) || s.EffectiveBool(GCEnabled) {
		t.Error("monitor mode must turn remote access and guest configuration off")
	}
	if got := s.EffectiveList(ExtAllowlist); !reflect.DeepEqual(got, MonitorAllowlist) {
		t.Errorf("effective allowlist = %v, want the monitoring allowlist", got)
	}
	if got := s.List(ExtAllowlist); !reflect.DeepEqual(got, []string{"Contoso/Backup"}) {
		t.Errorf("configured allowlist = %v: the user's list must be kept", got)
	}
	tests := []struct {
		name    string
		allowed bool
	}{
		{"Microsoft.Azure.Monitor/AzureMonitorWindowsAgent", true},
		{"microsoft.azure.monitor/azuremonitorwindowsagent", true},
		{"Microsoft.Azure.Monitor/AzureMonitorLinuxAgent", false}, // blocked wins
		{"Contoso/Backup", false},                                 // user's list is not in force
	}
	for _, tt := range tests {
		if d := s.ExtensionDecision(tt.name); d.Allowed != tt.allowed {
			t.Errorf("ExtensionDecision(%s) = %+v, want allowed=%v", tt.name, d, tt.allowed)
		}
	}
	// Back to full mode: the user's own lists are in force again.
	if _, err := s.Apply(Change{OpSet, ConfigMode, "full"}); err != nil {
		t.Fatal(err)
	}
	if !s.ExtensionDecision("contoso/backup").Allowed || !s.EffectiveBool(IncomingEnabled) {
		t.Error("returning to full mode must restore the configured values")
	}
}

func TestExtensionDecision(t *testing.T) {
	tests := []struct {
		name    string
		changes []Change
		ext     string
		allowed bool
	}{
		{"empty allowlist allows all", nil, "Any/Thing", true},
		{"listed", []Change{{OpSet, ExtAllowlist, "A/B"}}, "a/b", true},
		{"not listed", []Change{{OpSet, ExtAllowlist, "A/B"}}, "C/D", false},
		{"allow none", []Change{{OpSet, ExtAllowlist, "Allow/None"}}, "A/B", false},
		{"both lists: blocked", []Change{{OpSet, ExtAllowlist, "A/B"}, {OpSet, ExtBlocklist, "A/B"}}, "A/B", false},
		{"manager off", []Change{{OpSet, ExtEnabled, "false"}}, "A/B", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSettings()
			for _, c := range tt.changes {
				if _, err := s.Apply(c); err != nil {
					t.Fatal(err)
				}
			}
			if d := s.ExtensionDecision(tt.ext); d.Allowed != tt.allowed || d.Reason == "" {
				t.Errorf("decision = %+v, want allowed=%v with a reason", d, tt.allowed)
			}
		})
	}
}

func TestParseFile(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		wantCode errcode.Code
		check    func(t *testing.T, s *Settings, warnings []string)
	}{
		{"empty file is defaults", "", "", func(t *testing.T, s *Settings, _ []string) {
			if !s.Bool(IncomingEnabled) {
				t.Error("default incomingconnections.enabled must be true")
			}
		}},
		{"native types", `{"incomingconnections.enabled": false, "guestconfiguration.agent.cpulimit": 10, "extensions.allowlist": ["A/B"], "incomingconnections.ports": [22, "3389"]}`, "",
			func(t *testing.T, s *Settings, _ []string) {
				if s.Bool(IncomingEnabled) || s.Int(GCCPULimit) != 10 || !reflect.DeepEqual(s.List(ExtAllowlist), []string{"A/B"}) || !reflect.DeepEqual(s.List(IncomingPorts), []string{"22", "3389"}) {
					t.Errorf("unexpected settings %#v", s.values)
				}
			}},
		{"string forms as azcmagent writes them", `{"incomingconnections.enabled": "false", "extensions.allowlist": "A/B,C/D"}`, "",
			func(t *testing.T, s *Settings, _ []string) {
				if s.Bool(IncomingEnabled) || len(s.List(ExtAllowlist)) != 2 {
					t.Errorf("unexpected settings %#v", s.values)
				}
			}},
		{"unknown keys kept and warned", `{"future.setting": {"x": 1}}`, "",
			func(t *testing.T, s *Settings, warnings []string) {
				if len(warnings) != 1 || !strings.Contains(warnings[0], "future.setting") {
					t.Errorf("warnings = %v", warnings)
				}
				out, _ := s.Marshal()
				if !strings.Contains(string(out), `"future.setting"`) || !strings.Contains(string(out), `"x": 1`) {
					t.Errorf("unknown key lost on rewrite: %s", out)
				}
			}},
		{"not JSON", `{"incomingconnections.enabled": fal`, errcode.ConfigCorrupt, nil},
		{"array", `[1,2]`, errcode.ConfigCorrupt, nil},
		{"null", `null`, errcode.ConfigCorrupt, nil},
		{"trailing data", `{} {}`, errcode.ConfigCorrupt, nil},
		{"bad value", `{"guestconfiguration.agent.cpulimit": 500}`, errcode.ConfigCorrupt, nil},
		{"wrong type", `{"incomingconnections.enabled": 1}`, errcode.ConfigCorrupt, nil},
		{"duplicate in different case", `{"config.mode": "full", "Config.Mode": "monitor"}`, errcode.ConfigCorrupt, nil},
		{"duplicate key", `{"incomingconnections.enabled": false, "incomingconnections.enabled": true}`, errcode.ConfigCorrupt, nil},
		{"duplicate unknown key", `{"future.setting": 1, "future.setting": 2}`, errcode.ConfigCorrupt, nil},
		{"duplicate nested key", `{"future.setting": {"x": 1, "x": 2}}`, errcode.ConfigCorrupt, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, warnings, err := ParseFile("/x/localconfig.json", []byte(tt.data))
			if codeOf(err) != tt.wantCode {
				t.Fatalf("err = %v, want code %q", err, tt.wantCode)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "/x/localconfig.json") {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			tt.check(t, s, warnings)
		})
	}
}

// A duplicate key is refused with an error that names the key, whichever
// of its values encoding/json would have kept.
func TestParseFileDuplicateKeyNamed(t *testing.T) {
	for data, want := range map[string]string{
		`{"extensions.blocklist": [], "config.mode": "full", "extensions.blocklist": ["Evil/Ext"]}`: `has the key "extensions.blocklist" twice`,
		`{"future.setting": {"x": 1, "x": 2}}`:                                                      `has the key "x" twice in future.setting`,
	} {
		_, _, err := ParseFile("/x/localconfig.json", []byte(data))
		if codeOf(err) != errcode.ConfigCorrupt || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "config clear --all") {
			t.Errorf("ParseFile(%s) = %v, want ARC0015 with %q and the remedy", data, err, want)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	s := NewSettings()
	for _, c := range []Change{
		{OpSet, ExtAllowlist, "A/B,C/D"}, {OpSet, IncomingPorts, "22"}, {OpSet, GCCPULimit, "7"},
		{OpSet, ProxyURL, "http://p:3128"}, {OpSet, ConfigMode, "monitor"}, {OpSet, IncomingEnabled, "false"},
	} {
		if _, err := s.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	data, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := ParseFile("f", data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.values, s.values) {
		t.Errorf("round trip: %#v != %#v", back.values, s.values)
	}
}

func TestProxyCredentialsWarn(t *testing.T) {
	s := NewSettings()
	w, err := s.Apply(Change{OpSet, ProxyURL, "http://user:secret@proxy:3128"})
	if err != nil {
		t.Fatal(err)
	}
	if len(w) == 0 || !s.ProxyHasCredentials() {
		t.Fatalf("credentials in proxy.url must warn: %v", w)
	}
	for _, x := range w {
		if strings.Contains(x, "secret") {
			t.Errorf("warning leaks the secret: %q", x)
		}
	}
}
