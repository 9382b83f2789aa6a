//go:build !windows

package handler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/errcode"
)

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		cmd      string
		wantExit int
		wantCode errcode.Code
		wantLog  string
	}{
		{"success", "bin/ok.sh", 0, "", "all good"},
		{"failure", "bin/fail.sh 3", 3, CodeCommandFailed, "about to fail"},
		{"program on PATH with arguments", "sh -c 'echo from-path; exit 0'", 0, "", "from-path"},
		{"missing program", "bin/nope.sh", 127, CodeCommandFailed, "nope.sh"},
		{"killed by a signal", "echo dying; kill -TERM $$", -1, CodeCommandFailed, "dying"},
	}
	files := map[string]string{
		"bin/ok.sh":   "#!/bin/sh\necho all good\n",
		"bin/fail.sh": "#!/bin/sh\necho about to fail >&2\nexit \"$1\"\n",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ext := newExt(t, files, map[Op]string{OpInstall: tt.cmd})
			var r Runner
			res, err := r.Run(t.Context(), ext, OpInstall, 0)
			if res == nil {
				t.Fatalf("no result: %v", err)
			}
			if res.ExitCode != tt.wantExit {
				t.Errorf("exit code %d, want %d (err %v)", res.ExitCode, tt.wantExit, err)
			}
			if tt.wantCode == "" && err != nil {
				t.Errorf("err = %v", err)
			}
			if tt.wantCode != "" {
				if !errcode.Is(err, tt.wantCode) {
					t.Fatalf("err = %v, want %s", err, tt.wantCode)
				}
				want := "code " + strconv.Itoa(tt.wantExit)
				if tt.wantExit < 0 {
					want = "signal terminated"
				}
				for _, s := range []string{"install", want, res.LogFile} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %q", err, s)
					}
				}
			}
			log, _ := os.ReadFile(res.LogFile)
			if !strings.Contains(string(log), tt.wantLog) || !strings.Contains(res.Tail, tt.wantLog) {
				t.Errorf("log %q / tail %q lack %q", log, res.Tail, tt.wantLog)
			}
			if res.LogFile != filepath.Join(ext.LogDir, "install.log") || mode(t, res.LogFile) != 0o600 {
				t.Errorf("log file %s mode %v", res.LogFile, mode(t, res.LogFile))
			}
		})
	}
}

func TestRunEnvironmentAndDirectory(t *testing.T) {
	ext := newExt(t, map[string]string{
		"scripts/env.sh": "#!/bin/sh\necho \"seq=$ConfigSequenceNumber pwd=$(pwd) path=$AZURE_GUEST_AGENT_EXTENSION_PATH ver=$AZURE_GUEST_AGENT_EXTENSION_VERSION extra=$EXTRA arg=$1 secret=${ARCAGENT_TEST_SECRET:-unset}\" > out.txt\n",
	}, map[Op]string{OpEnable: "scripts/env.sh the-arg"})
	t.Setenv("ARCAGENT_TEST_SECRET", "leak")
	r := Runner{Env: []string{"EXTRA=x"}}
	if _, err := r.Run(t.Context(), ext, OpEnable, 42); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(ext.Dir, "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := "seq=42 pwd=" + ext.Dir + " path=" + ext.Dir + " ver=1.0 extra=x arg=the-arg secret=unset\n"
	if string(got) != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestRunDirectoryWithQuote(t *testing.T) {
	ext := newExt(t, map[string]string{"bin/ok.sh": "#!/bin/sh\necho ran > marker\n"}, map[Op]string{OpEnable: "bin/ok.sh"})
	odd := filepath.Join(filepath.Dir(ext.Dir), "it's $(a) dir")
	if err := os.Rename(ext.Dir, odd); err != nil {
		t.Fatal(err)
	}
	ext.Dir = odd
	var r Runner
	if _, err := r.Run(t.Context(), ext, OpEnable, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(odd, "marker")); err != nil {
		t.Errorf("command did not run in %q: %v", odd, err)
	}
}

// gone reports whether pid no longer runs (absent, or a zombie nobody reaped).
func gone(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for range 200 {
		if gone(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("process %d still runs", pid)
}

func readPid(t *testing.T, p string) int {
	t.Helper()
	for range 200 {
		if data, err := os.ReadFile(p); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", p)
	return 0
}

const spawner = "#!/bin/sh\nsleep 300 &\necho $! > child.pid\necho started\nwait\n"

func TestRunTimeoutKillsProcessGroup(t *testing.T) {
	ext := newExt(t, map[string]string{"bin/spawn.sh": spawner}, map[Op]string{OpInstall: "bin/spawn.sh"})
	r := Runner{Timeouts: map[Op]time.Duration{OpInstall: 300 * time.Millisecond}}
	res, err := r.Run(t.Context(), ext, OpInstall, 0)
	if !errcode.Is(err, CodeCommandTimeout) {
		t.Fatalf("err = %v, want %s", err, CodeCommandTimeout)
	}
	if !strings.Contains(err.Error(), "install") || !strings.Contains(err.Error(), "300ms") {
		t.Errorf("error %q does not say which op timed out after how long", err)
	}
	if res == nil || res.ExitCode != -1 || !strings.Contains(res.Tail, "started") {
		t.Fatalf("result %+v", res)
	}
	waitGone(t, readPid(t, filepath.Join(ext.Dir, "child.pid")))
}

func TestRunCancel(t *testing.T) {
	ext := newExt(t, map[string]string{"bin/spawn.sh": spawner}, map[Op]string{OpEnable: "bin/spawn.sh"})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		readPid(t, filepath.Join(ext.Dir, "child.pid"))
		cancel()
	}()
	var r Runner
	res, err := r.Run(ctx, ext, OpEnable, 0)
	if !errors.Is(err, context.Canceled) || !errcode.Is(err, CodeCommandTimeout) {
		t.Fatalf("err = %v, want context.Canceled with %s", err, CodeCommandTimeout)
	}
	if res == nil || res.ExitCode != -1 {
		t.Fatalf("result %+v", res)
	}
	waitGone(t, readPid(t, filepath.Join(ext.Dir, "child.pid")))
}

func TestRunBoundsOutput(t *testing.T) {
	ext := newExt(t, map[string]string{
		"bin/loud.sh": "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' a\necho\necho THE-END\n",
	}, map[Op]string{OpEnable: "bin/loud.sh"})
	r := Runner{MaxOutput: 10000}
	res, err := r.Run(t.Context(), ext, OpEnable, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(res.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 10000+1000 {
		t.Errorf("log of %d bytes, want about 10000", fi.Size())
	}
	if res.Dropped < 290000 {
		t.Errorf("dropped %d bytes, want ≥ 290000", res.Dropped)
	}
	log, _ := os.ReadFile(res.LogFile)
	if !strings.Contains(string(log), "not kept") {
		t.Errorf("log has no note about the dropped output")
	}
	if !strings.Contains(res.Tail, "THE-END") || len(res.Tail) > TailSize+64 {
		t.Errorf("tail of %d bytes without the end: %q", len(res.Tail), res.Tail[max(0, len(res.Tail)-40):])
	}
	// The next run keeps this log as install.log.1.
	if _, err := r.Run(t.Context(), ext, OpEnable, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(res.LogFile + ".1"); err != nil {
		t.Errorf("previous log not kept: %v", err)
	}
}

func TestRunBackgroundProcessDoesNotBlock(t *testing.T) {
	// enable commands often start a daemon that inherits the output.
	ext := newExt(t, map[string]string{
		"bin/daemon.sh": "#!/bin/sh\nsleep 30 &\necho $! > daemon.pid\necho enabled\n",
	}, map[Op]string{OpEnable: "bin/daemon.sh"})
	var r Runner
	res, err := r.Run(t.Context(), ext, OpEnable, 0)
	if err != nil {
		t.Fatal(err)
	}
	pid := readPid(t, filepath.Join(ext.Dir, "daemon.pid"))
	defer func() { _ = syscallKill(pid) }()
	if gone(pid) {
		t.Error("the daemon an enable command started was killed")
	}
	if res.ExitCode != 0 || !strings.Contains(res.Tail, "enabled") {
		t.Errorf("result %+v", res)
	}
}

func TestRunRefusesMissingCommand(t *testing.T) {
	ext := newExt(t, nil, map[Op]string{OpUpdate: " "})
	var r Runner
	if _, err := r.Run(t.Context(), ext, OpUpdate, 0); !errcode.Is(err, CodeCommandStart) {
		t.Errorf("empty command: %v, want %s", err, CodeCommandStart)
	}
	if _, err := r.Run(t.Context(), ext, Op("reboot"), 0); !errcode.Is(err, CodeCommandStart) {
		t.Errorf("unknown op: %v, want %s", err, CodeCommandStart)
	}
	ext.Manifest = nil
	if _, err := r.Run(t.Context(), ext, OpEnable, 0); !errcode.Is(err, CodeCommandStart) {
		t.Errorf("no manifest: %v, want %s", err, CodeCommandStart)
	}
	if _, err := (&Runner{CPULimit: 101}).Run(t.Context(), newExt(t, nil, nil), OpEnable, 0); !errcode.Is(err, CodeCommandStart) {
		t.Errorf("CPU limit 101: %v", err)
	}
}

func TestRunDegradedWithoutCgroup(t *testing.T) {
	for name, root := range map[string]string{
		"nonexistent":  filepath.Join(t.TempDir(), "no-such-dir"),
		"not cgroupfs": t.TempDir(),
	} {
		t.Run(name, func(t *testing.T) {
			ext := newExt(t, map[string]string{"bin/ok.sh": "#!/bin/sh\necho ran\n"}, map[Op]string{OpEnable: "bin/ok.sh"})
			r := Runner{CPULimit: 5, CgroupRoot: root}
			res, err := r.Run(t.Context(), ext, OpEnable, 0)
			if err != nil {
				t.Fatal(err)
			}
			if res.Degraded == "" || !strings.Contains(res.Degraded, "v2") || !strings.Contains(res.Degraded, "v1") || res.Cgroup != "" {
				t.Errorf("Degraded %q, Cgroup %q: want the reasons for v2 and v1", res.Degraded, res.Cgroup)
			}
			if !strings.Contains(res.Tail, "ran") {
				t.Errorf("the command did not run: %+v", res)
			}
		})
	}
}

func TestShellCommand(t *testing.T) {
	tests := []struct{ dir, cmd, want string }{
		{"/var/lib/waagent/A.B-1", "bin/run.sh enable", "'/var/lib/waagent/A.B-1'/bin/run.sh enable"},
		{"/x/it's", "./install.sh", `'/x/it'\''s'/install.sh`},
		{"/x", "bash install.sh", "bash install.sh"},
		{"/x", "/usr/bin/env true", "/usr/bin/env true"},
	}
	for _, tt := range tests {
		if got := ShellCommand(tt.dir, tt.cmd); got != tt.want {
			t.Errorf("ShellCommand(%q, %q) = %q, want %q", tt.dir, tt.cmd, got, tt.want)
		}
	}
}

func TestRunNotStartedWhenCancelled(t *testing.T) {
	ext := newExt(t, map[string]string{"bin/mark.sh": "#!/bin/sh\ntouch marker\n"}, map[Op]string{OpEnable: "bin/mark.sh"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var r Runner
	res, err := r.Run(ctx, ext, OpEnable, 0)
	if res != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %+v, %v; want no result and context.Canceled", res, err)
	}
	if _, err := os.Stat(filepath.Join(ext.Dir, "marker")); err == nil {
		t.Error("the command ran")
	}
}
