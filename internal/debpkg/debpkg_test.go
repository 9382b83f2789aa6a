package debpkg

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
)

// unitDir is the repository's unit directory, from this package's folder.
const unitDir = "../../packaging/systemd"

func testInputs(t *testing.T) Inputs {
	t.Helper()
	bin := t.TempDir()
	for _, name := range []string{"arcagent", "arcserver"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\necho "+name+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return Inputs{Version: "v1.2.3", Arch: "amd64", BinDir: bin, UnitDir: unitDir}
}

func itemsByPath(t *testing.T, items []Item) map[string]Item {
	t.Helper()
	m := map[string]Item{}
	for _, it := range items {
		if _, dup := m[it.Path]; dup {
			t.Errorf("%s is in the package twice", it.Path)
		}
		m[it.Path] = it
	}
	return m
}

// TestAgentItemsFromLayout compares the package's contents with
// layout.Entries() both ways.
func TestAgentItemsFromLayout(t *testing.T) {
	items, err := AgentItems(testInputs(t))
	if err != nil {
		t.Fatal(err)
	}
	byPath := itemsByPath(t, items)
	rows := map[string]layout.Entry{}
	// Layout -> package.
	for _, e := range layout.Entries() {
		rows[e.Path] = e
		switch e.Kind {
		case layout.KindDir, layout.KindFile:
			it, ok := byPath[e.Path]
			if !ok {
				if e.Kind == layout.KindFile && slices.Contains(runtimeFiles, e.ID) {
					continue
				}
				t.Errorf("layout row %s (%s) is not in the package", e.ID, e.Path)
				continue
			}
			if it.LayoutID != e.ID || it.Owner != e.Owner || it.Group != e.Group || it.Mode != e.Mode {
				t.Errorf("%s: package has %s %s:%s %04o, layout row %s says %s:%s %04o", e.Path, it.LayoutID, it.Owner, it.Group, it.Mode, e.ID, e.Owner, e.Group, e.Mode)
			}
			wantDir := e.Kind == layout.KindDir
			if (it.Type == TypeDir) != wantDir {
				t.Errorf("%s: package type %s, layout kind %s", e.Path, it.Type, e.Kind)
			}
		case layout.KindGlob:
			if _, ok := byPath[e.Path]; ok {
				t.Errorf("glob row %s (%s) is shipped: runtime files are not", e.ID, e.Path)
			}
			dir, ok := byPath[path.Dir(e.Path)]
			if !ok || dir.Type != TypeDir {
				t.Errorf("the directory of glob row %s (%s) is not in the package", e.ID, e.Path)
			}
		}
	}
	// Package -> layout: every item is a row with the same owner and
	// mode, or a declared extra.
	extras := map[string]bool{VersionFile: true, SysusersFile: true, layout.UnitDir + "/" + PathUnit: true, layout.RunDir: true}
	for _, l := range Links {
		extras[layout.BinDir+"/"+l] = true
	}
	for _, e := range layout.Entries() {
		if e.Kind == layout.KindGlob {
			if _, isRow := rows[path.Dir(e.Path)]; !isRow {
				extras[path.Dir(e.Path)] = true
			}
		}
	}
	for _, it := range items {
		if it.LayoutID != "" {
			e, ok := rows[it.Path]
			if !ok || e.ID != it.LayoutID {
				t.Errorf("%s claims layout row %q, which is not the row of that path", it.Path, it.LayoutID)
			}
			continue
		}
		if !extras[it.Path] {
			t.Errorf("%s is neither a layout row nor a declared extra", it.Path)
		}
		if it.Why == "" {
			t.Errorf("extra %s does not say why it is there", it.Path)
		}
		if _, isRow := rows[it.Path]; isRow {
			t.Errorf("extra %s is a layout row: take it from the row", it.Path)
		}
	}
	for p := range extras {
		if _, ok := byPath[p]; !ok {
			t.Errorf("declared extra %s is not in the package", p)
		}
	}
}

func TestLocalConfigConffile(t *testing.T) {
	items, err := AgentItems(testInputs(t))
	if err != nil {
		t.Fatal(err)
	}
	it := itemsByPath(t, items)[layout.LocalConfig]
	if it.Type != TypeConfig {
		t.Fatalf("localconfig.json is a %s, want a conffile", it.Type)
	}
	s, warnings, err := config.ParseFile(layout.LocalConfig, it.Data)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("the shipped localconfig.json does not parse cleanly: %v %v", err, warnings)
	}
	again, err := s.Marshal()
	if err != nil || !bytes.Equal(again, it.Data) {
		t.Errorf("the shipped localconfig.json %q is not what arcagent config writes (%q)", it.Data, again)
	}
}

// unitKeys returns the values of key in section of a unit file.
func unitKeys(t *testing.T, file, section, key string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			cur = line
			continue
		}
		if v, ok := strings.CutPrefix(line, key+"="); ok && cur == section {
			out = append(out, v)
		}
	}
	return out
}

// TestUnitsRunAsLayoutIdentities: every service of agent/layout has its
// unit in the package, and the unit runs as the layout's user.
func TestUnitsRunAsLayoutIdentities(t *testing.T) {
	items, err := AgentItems(testInputs(t))
	if err != nil {
		t.Fatal(err)
	}
	byPath := itemsByPath(t, items)
	var names []string
	for _, s := range layout.Services() {
		names = append(names, s.Name)
		p := layout.UnitDir + "/" + s.Name + ".service"
		it, ok := byPath[p]
		if !ok {
			t.Errorf("service %s: %s is not in the package", s.Name, p)
			continue
		}
		if got := unitKeys(t, it.Source, "[Service]", "User"); !slices.Equal(got, []string{s.User}) {
			t.Errorf("%s runs as %v, layout says %s", p, got, s.User)
		}
		exec := unitKeys(t, it.Source, "[Service]", "ExecStart")
		if len(exec) != 1 || !strings.HasPrefix(exec[0], layout.Binary+" ") {
			t.Errorf("%s: ExecStart %v does not run %s", p, exec, layout.Binary)
		}
	}
	order := slices.Clone(StartOrder())
	slices.Sort(order)
	slices.Sort(names)
	if !slices.Equal(order, names) {
		t.Errorf("StartOrder %v is not the layout's services %v", StartOrder(), names)
	}
}

func TestServerUnit(t *testing.T) {
	unit := filepath.Join(unitDir, path.Base(ServerUnit))
	if got := unitKeys(t, unit, "[Service]", "User"); !slices.Equal(got, []string{ServerUser}) {
		t.Errorf("arcserver.service runs as %v, want %s", got, ServerUser)
	}
	exec := unitKeys(t, unit, "[Service]", "ExecStart")
	if len(exec) != 1 || !strings.HasPrefix(exec[0], ServerBinary+" serve --data "+ServerDataDir) {
		t.Errorf("arcserver.service ExecStart %v, want %s serve --data %s", exec, ServerBinary, ServerDataDir)
	}
	if got := unitKeys(t, unit, "[Service]", "ReadWritePaths"); !slices.Equal(got, []string{ServerDataDir}) {
		t.Errorf("arcserver.service ReadWritePaths %v, want %s", got, ServerDataDir)
	}
	if got := unitKeys(t, unit, "[Unit]", "ConditionPathExists"); !slices.Equal(got, []string{ServerInitialised}) {
		t.Errorf("arcserver.service ConditionPathExists %v, want %s", got, ServerInitialised)
	}
}

func TestSysusers(t *testing.T) {
	got := Sysusers()
	for _, want := range []string{
		`u himds - "arcagent metadata and identity (HIMDS)" / /usr/sbin/nologin`,
		`u arcproxy - "arcagent arc proxy" / /usr/sbin/nologin`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("sysusers.d file lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, " root ") {
		t.Errorf("sysusers.d file names root:\n%s", got)
	}
}

func TestInputsRefused(t *testing.T) {
	in := testInputs(t)
	for name, mut := range map[string]func(*Inputs){
		"arch":    func(in *Inputs) { in.Arch = "mips" },
		"version": func(in *Inputs) { in.Version = "latest" },
	} {
		t.Run(name, func(t *testing.T) {
			bad := in
			mut(&bad)
			if _, err := Agent(bad); err == nil {
				t.Error("Agent accepted it")
			}
			if _, err := Server(bad); err == nil {
				t.Error("Server accepted it")
			}
		})
	}
}
