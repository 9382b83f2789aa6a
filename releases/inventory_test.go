package releases

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// readAll collects an inventory (copying the reused machine).
func readAll(t testing.TB, data, format string) ([]Machine, error) {
	t.Helper()
	var out []Machine
	err := ReadInventory(strings.NewReader(data), format, func(m *Machine) error {
		c := *m
		c.Extensions = append([]InstalledExtension(nil), m.Extensions...)
		out = append(out, c)
		return nil
	})
	return out, err
}

const jsonInventory = `[
  {"name": "web-01", "agent": "1.28.02260.736", "extensions": [{"name": "Contoso.Monitoring.StatusReporter", "version": "1.0.0"}, {"publisher": "Contoso.X", "type": "Y", "version": "2"}]},
  {"machine": "web-02", "agentVersion": "v1.29.0", "extensions": [{"name": "Contoso.Monitoring/StatusReporter", "version": "0.9"}]},
  {"agent": "1.0.0"},
  {"name": "db-01", "agent": 1.28},
  {"name": "db-02", "agent": "1.0", "extensions": "oops"},

  {"name": "db-03", "agent": "1.0", "extensions": [{"version": "1"}]},
  {"name": "db-04", "agent": {"version": "1.2.3"}, "extensions": [{"name": "A.B", "version": "3"}]},
  {"name": "db-05", "agent_version": "1.2.4", "unknown": {"ignored": true}},
  {"name": "db-06", "agent": "1.2.5", "extensions": [{"name": "C.D", "version": "4"}]}
]`

func TestReadJSONInventory(t *testing.T) {
	ms, err := readAll(t, jsonInventory, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, agent string
		line, exts  int
		problem     string
	}{
		{"web-01", "1.28.02260.736", 2, 2, ""},
		{"web-02", "v1.29.0", 3, 1, ""},
		{"#3", "1.0.0", 4, 0, "no name"},
		{"db-01", "", 5, 0, "agent must be a version string in quotes, not 1.28"},
		{"db-02", "1.0", 6, 0, "extensions must be a list, not a JSON string"},
		{"db-03", "1.0", 8, 0, "extension 1 has no name"},
		{"db-04", "1.2.3", 9, 1, ""},
		{"db-05", "1.2.4", 10, 0, ""},
		{"db-06", "1.2.5", 11, 1, ""},
	}
	if len(ms) != len(want) {
		t.Fatalf("%d machines, want %d: %+v", len(ms), len(want), ms)
	}
	for i, w := range want {
		m := ms[i]
		if m.Name != w.name || m.Agent != w.agent || m.Line != w.line || len(m.Extensions) != w.exts || !strings.Contains(m.Problem, w.problem) || (w.problem == "") != (m.Problem == "") {
			t.Errorf("machine %d = %+v; want %+v", i, m, w)
		}
	}
	if ms[0].Extensions[1].Product != "Contoso.X.Y" || ms[1].Extensions[0].Product != "Contoso.Monitoring.StatusReporter" {
		t.Errorf("products %+v %+v", ms[0].Extensions, ms[1].Extensions)
	}
	// A reused machine keeps nothing of the previous one.
	if ms[8].Extensions[0].Product != "C.D" {
		t.Errorf("stale extension %+v", ms[8].Extensions)
	}

	// The object form, with other members before "machines".
	obj := `{"generated": "2026-01-01", "meta": {"a": [1, 2]}, "machines": [{"name": "a", "agent": "1"}], "after": 1}`
	if ms, err := readAll(t, obj, FormatJSON); err != nil || len(ms) != 1 || ms[0].Name != "a" {
		t.Errorf("object form: %+v, %v", ms, err)
	}
	// Whole-file errors name the line.
	for _, tt := range []struct{ in, want string }{
		{"[\n{\"name\": \"a\", \"agent\": \"1\"},\n{\"name\": \"b\",,}\n]", "line 3"},
		{"[\n{\"name\": \"a\"}", "line 2"},
		{`{"hosts": []}`, `no "machines" array`},
		{`"just a string"`, "array of machines"},
		{`{"machines": {"a": 1}}`, "array of machines"},
		{``, "not valid"},
	} {
		_, err := readAll(t, tt.in, FormatJSON)
		wantCode(t, err, CodeBadInventory, tt.want)
	}
}

func TestReadCSVInventory(t *testing.T) {
	in := "\ufeffMachine, Agent_Version ,extensions\n" +
		"web-01,1.28.02260.736,Contoso.Monitoring.StatusReporter=1.0.0; Contoso.X/Y@2.0\n" +
		"web-02,v1.29.0,\n" +
		"# a comment\n" +
		",1.0.0,\n" +
		"db-01,1.0.0,Contoso.X.Y\n" +
		"db-02,1.\"0,\n" +
		"db-03,1.0,a=1,too-many\n" +
		"\"db-04\",1.2.3,\"A.B=3;;\"\n"
	ms, err := readAll(t, in, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, agent string
		line, exts  int
		problem     string
	}{
		{"web-01", "1.28.02260.736", 2, 2, ""},
		{"web-02", "v1.29.0", 3, 0, ""},
		{"#3", "1.0.0", 5, 0, "no name"},
		{"db-01", "1.0.0", 6, 0, `extension "Contoso.X.Y" is not NAME=VERSION`},
		{"#5", "", 7, 0, "not valid CSV"},
		{"db-03", "1.0", 8, 1, "4 fields, the header 3"},
		{"db-04", "1.2.3", 9, 1, ""},
	}
	if len(ms) != len(want) {
		t.Fatalf("%d machines, want %d: %+v", len(ms), len(want), ms)
	}
	for i, w := range want {
		m := ms[i]
		if m.Name != w.name || m.Agent != w.agent || m.Line != w.line || len(m.Extensions) != w.exts || !strings.Contains(m.Problem, w.problem) || (w.problem == "") != (m.Problem == "") {
			t.Errorf("machine %d = %+v; want %+v", i, m, w)
		}
	}
	if ms[0].Extensions[1] != (InstalledExtension{"Contoso.X.Y", "2.0"}) {
		t.Errorf("extension %+v", ms[0].Extensions[1])
	}
	for _, tt := range []struct{ in, want string }{
		{"", "empty"},
		{"host,version2\nx,1\n", "must name the columns machine and agent"},
		{"machine,agent\n", ""},
	} {
		_, err := readAll(t, tt.in, FormatCSV)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tt.in, err)
			}
			continue
		}
		wantCode(t, err, CodeBadInventory, tt.want)
	}
	if _, err := readAll(t, "x", "yaml"); !isCode(err, CodeBadInventory) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestExampleInventories(t *testing.T) {
	for _, f := range []string{"fleet.json", "fleet.csv"} {
		data, err := os.ReadFile("../examples/inventory/" + f)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := readAll(t, string(data), "")
		if err != nil || len(ms) != 4 {
			t.Fatalf("%s: %d machines, %v", f, len(ms), err)
		}
		for _, m := range ms {
			if m.Problem != "" {
				t.Errorf("%s: %s: %s", f, m.Name, m.Problem)
			}
		}
	}
}

func fuzzInventory(t *testing.T, data []byte, format string) {
	n := 0
	err := ReadInventory(bytes.NewReader(data), format, func(m *Machine) error {
		n++
		if m.Name == "" {
			t.Fatalf("machine %d has no name (bad rows are named #N)", n)
		}
		if m.Line < 1 {
			t.Fatalf("machine %q has line %d", m.Name, m.Line)
		}
		for _, x := range m.Extensions {
			if x.Product == "" {
				t.Fatalf("machine %q has an extension without a product", m.Name)
			}
		}
		if n > len(data)+1 {
			t.Fatalf("%d machines from %d bytes", n, len(data))
		}
		return nil
	})
	if err != nil && !isCode(err, CodeBadInventory) {
		t.Fatalf("error without the inventory code: %v", err)
	}
}

func FuzzReadJSONInventory(f *testing.F) {
	f.Add([]byte(jsonInventory))
	f.Add([]byte(`{"machines": [{"name": "a", "agent": "1"}]}`))
	f.Add([]byte(`[{"name": "a", "agent": {"version": 1}, "extensions": [null, {"name": 1}]}]`))
	f.Add([]byte(`[`))
	f.Add([]byte("null\n"))
	f.Add([]byte(`[{"name": "a", "agentVersion": "1", "inventory": {}, "reportedStatus": {"extensions": [{"name": "A.B", "version": "2", "state": "Failed"}]}}]`))
	if data, err := os.ReadFile("../examples/inventory/fleet.json"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzInventory(t, data, FormatJSON) })
}

func FuzzReadCSVInventory(f *testing.F) {
	f.Add([]byte("machine,agent,extensions\nweb-01,1.2.3,A.B=1;C.D@2\n,,\n\"x\"y,1,\n"))
	f.Add([]byte("name,version\n\"a\nb\",1\n"))
	f.Add([]byte("machine,agent\n" + strings.Repeat("m,1\n", 10)))
	if data, err := os.ReadFile("../examples/inventory/fleet.csv"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzInventory(t, data, FormatCSV) })
}

var _ = fmt.Sprint

// The JSON of `arcagent fleet machines list -j`: an indented array of
// machines whose extensions are under reportedStatus; null when empty.
func TestReadMachinesListInventory(t *testing.T) {
	const list = `[
  {
    "id": "0b6c",
    "name": "web-01",
    "status": "Connected",
    "agentVersion": "1.29.0",
    "inventory": {"hostname": "web-01.example.com", "agentVersion": "1.29.0"},
    "tags": {"env": "prod"},
    "reportedStatus": {"extensions": [{"name": "Contoso.X", "version": "1.2.0", "state": "Succeeded"}], "guestConfiguration": []}
  },
  {
    "id": "1d2e",
    "name": "new-01",
    "agentVersion": "",
    "inventory": {}
  }
]
`
	ms, err := readAll(t, list, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name != "web-01" || ms[0].Agent != "1.29.0" || ms[0].Line != 2 ||
		len(ms[0].Extensions) != 1 || ms[0].Extensions[0] != (InstalledExtension{Product: "Contoso.X", Version: "1.2.0"}) ||
		ms[1].Name != "new-01" || len(ms[1].Extensions) != 0 || ms[1].Problem != "" {
		t.Fatalf("machines %+v", ms)
	}
	for _, empty := range []string{"null\n", "  null"} {
		if ms, err := readAll(t, empty, ""); err != nil || len(ms) != 0 {
			t.Errorf("%q: %v %+v", empty, err, ms)
		}
	}
	if _, err := readAll(t, "null null", FormatJSON); !isCode(err, CodeBadInventory) {
		t.Errorf("null null: %v", err)
	}
}
