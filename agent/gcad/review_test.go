package gcad

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/agent/guestconfig"
)

// TestDisabledDuringPass: guestconfiguration.enabled turned false while a
// pass runs (here by the first assignment's own validate script, standing
// for the administrator) stops the pass from changing anything more: the
// assignments after it are reported disabled and nothing of theirs is set.
func TestDisabledDuringPass(t *testing.T) {
	w := newWorld(t)
	w.config(map[string]any{})
	cfgRel, err := filepath.Rel(w.root, w.l.LocalConfig())
	if err != nil {
		t.Fatal(err)
	}
	off, _ := json.Marshal(map[string]any{"guestconfiguration.enabled": false})
	flip := `apiVersion: arcagent.dev/guestconfig/v1
name: SSH
version: 1.0.0
resources:
  - id: switch-off
    exec:
      validate: |
        printf '%s' '` + string(off) + `' > "$ARCAGENT_ROOT/` + cfgRel + `"
        exit 100
`
	a := w.publish("a-first", pub, "1.0.0", flip, "ApplyAndAutoCorrect", w.signer)
	b := w.publish("b-second", pub, "1.0.0", baseline, "ApplyAndAutoCorrect", w.signer)
	w.cp.assign(a, b)
	before := hashTree(t, filepath.Join(w.root, "etc"))
	w.pass(true)
	sameTree(t, before, hashTree(t, filepath.Join(w.root, "etc")))
	if _, s := w.cp.last(t, "b-second"); s.Compliance != guestconfig.NotApplied || s.Message != DisabledMessage {
		t.Fatalf("the assignment after the switch: %+v", s)
	}
}

// TestDisabledDuringPreflight: turned off while the read-only preflight of
// an enforcing assignment runs, the enforcing evaluation does not start.
func TestDisabledDuringPreflight(t *testing.T) {
	w := newWorld(t)
	w.config(map[string]any{})
	cfgRel, err := filepath.Rel(w.root, w.l.LocalConfig())
	if err != nil {
		t.Fatal(err)
	}
	off, _ := json.Marshal(map[string]any{"guestconfiguration.enabled": false})
	doc := `apiVersion: arcagent.dev/guestconfig/v1
name: SSH
version: 1.0.0
resources:
  - id: marker
    exec:
      validate: |
        printf '%s' '` + string(off) + `' > "$ARCAGENT_ROOT/` + cfgRel + `"
        [ -f "$ARCAGENT_ROOT/etc/marker" ] && exit 100
        exit 101
      enforce: touch "$ARCAGENT_ROOT/etc/marker" && exit 100
`
	w.cp.assign(w.publish("marker", pub, "1.0.0", doc, "ApplyAndAutoCorrect", w.signer))
	before := hashTree(t, filepath.Join(w.root, "etc"))
	w.pass(true)
	sameTree(t, before, hashTree(t, filepath.Join(w.root, "etc")))
	if _, s := w.cp.last(t, "marker"); s.Compliance != guestconfig.NotApplied || !contains(s.Message, DisabledMessage) {
		t.Fatalf("status %+v", s)
	}
}
