//go:build !windows

package handler

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/errcode"
)

func TestPrepare(t *testing.T) {
	ext := newExt(t, nil, nil)
	for range 2 { // idempotent
		if err := Prepare(ext); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(ext.Dir, HandlerEnvironmentName))
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("HandlerEnvironment.json is not a JSON array: %v\n%s", err, data)
	}
	if len(got) != 1 {
		t.Fatalf("want one element, got %d", len(got))
	}
	if got[0]["version"] != 1.0 || got[0]["name"] != "Test.Handler" {
		t.Errorf("version/name = %v/%v", got[0]["version"], got[0]["name"])
	}
	want := map[string]any{
		"logFolder":     ext.LogDir,
		"configFolder":  filepath.Join(ext.Dir, "config"),
		"statusFolder":  filepath.Join(ext.Dir, "status"),
		"heartbeatFile": filepath.Join(ext.Dir, "heartbeat.log"),
	}
	he, _ := got[0]["handlerEnvironment"].(map[string]any)
	if len(he) != len(want) {
		t.Errorf("handlerEnvironment = %v, want exactly %v", he, want)
	}
	for k, v := range want {
		if he[k] != v {
			t.Errorf("handlerEnvironment.%s = %v, want %v", k, he[k], v)
		}
	}
	if !json.Valid(data) || string(data[:1]) != "[" {
		t.Errorf("not the array form: %s", data)
	}
	for p, m := range map[string]os.FileMode{
		ext.ConfigDir(): 0o700, ext.StatusDir(): 0o700, ext.LogDir: 0o700,
		filepath.Dir(ext.LogDir):                       0o700,
		filepath.Join(ext.Dir, HandlerEnvironmentName): 0o600,
	} {
		if got := mode(t, p); got != m {
			t.Errorf("mode of %s = %v, want %v", p, got, m)
		}
	}
}

func TestPrepareRepairsModeAndRefusesLinks(t *testing.T) {
	ext := newExt(t, nil, nil)
	if err := os.Mkdir(ext.ConfigDir(), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ext.ConfigDir(), 0o777); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.Chmod(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, ext.StatusDir()); err != nil {
		t.Fatal(err)
	}
	err := Prepare(ext)
	if !errcode.Is(err, CodeHandlerFiles) {
		t.Fatalf("Prepare with a linked status dir: %v, want %s", err, CodeHandlerFiles)
	}
	if got := mode(t, ext.ConfigDir()); got != 0o700 {
		t.Errorf("config dir mode = %v, want 0700", got)
	}
	if got := mode(t, outside); got != 0o755 {
		t.Errorf("the link target's mode was changed to %v", got)
	}
	if err := os.Remove(ext.StatusDir()); err != nil {
		t.Fatal(err)
	}
	if err := Prepare(ext); err != nil {
		t.Fatal(err)
	}
}

func TestPrepareRefusesBadExtension(t *testing.T) {
	ext := newExt(t, nil, nil)
	for name, e := range map[string]Extension{
		"no version":      {Publisher: "A", Type: "B", Dir: ext.Dir, LogDir: ext.LogDir},
		"relative dir":    {Publisher: "A", Type: "B", Version: "1", Dir: "x", LogDir: ext.LogDir},
		"missing dir":     {Publisher: "A", Type: "B", Version: "1", Dir: filepath.Join(ext.Dir, "nope"), LogDir: ext.LogDir},
		"slash in type":   {Publisher: "A", Type: "../../x", Version: "1", Dir: ext.Dir, LogDir: ext.LogDir},
		"dot-dot version": {Publisher: "A", Type: "B", Version: "..", Dir: ext.Dir, LogDir: ext.LogDir},
		"newline":         {Publisher: "A\nB", Type: "B", Version: "1", Dir: ext.Dir, LogDir: ext.LogDir},
	} {
		if err := Prepare(e); !errcode.Is(err, CodeHandlerFiles) {
			t.Errorf("%s: %v, want %s", name, err, CodeHandlerFiles)
		}
	}
}
