package handler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/internal/safetext"
)

// Op is a lifecycle operation of a handler.
type Op string

// The lifecycle operations, each naming a command of HandlerManifest.json.
const (
	OpInstall   Op = "install"
	OpEnable    Op = "enable"
	OpDisable   Op = "disable"
	OpUpdate    Op = "update"
	OpUninstall Op = "uninstall"
)

// Defaults of Runner.
const (
	DefaultTimeout   = 5 * time.Minute
	DefaultMaxOutput = 1 << 20
	// TailSize bounds Result.Tail.
	TailSize = 2 << 10
	// DefaultPath is the PATH commands run with.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// outputGrace is how long Run waits, after the command exited, for
	// processes it left behind to close its output.
	outputGrace = time.Second
)

// Command returns the manifest command of op ("" when op is unknown).
func Command(m *extensions.HandlerManifest, op Op) string {
	if m == nil {
		return ""
	}
	c := m.HandlerManifest
	switch op {
	case OpInstall:
		return c.InstallCommand
	case OpEnable:
		return c.EnableCommand
	case OpDisable:
		return c.DisableCommand
	case OpUpdate:
		return c.UpdateCommand
	case OpUninstall:
		return c.UninstallCommand
	}
	return ""
}

// Runner runs lifecycle commands. The zero value runs without a CPU limit
// and with the defaults. A Runner may run commands of different extensions
// from several goroutines at once; commands of one extension must not
// overlap (they share its cgroup and log files), which extd ensures by
// handling one extension at a time.
type Runner struct {
	CPULimit   int                  // percent of one CPU, 1..100; 0 = no limit
	Timeouts   map[Op]time.Duration // missing → DefaultTimeout (5 min)
	MaxOutput  int64                // bytes of output kept in the log file per command (default 1 MiB)
	CgroupRoot string               // "" = /sys/fs/cgroup; tests point elsewhere
	Logger     *slog.Logger
	// Env holds extra KEY=VALUE entries for the command's environment
	// (for instance AZURE_GUEST_AGENT_UPDATING_FROM_VERSION=1.0 on update).
	Env []string
}

// Result is what one command did.
type Result struct {
	Op       Op
	Command  string // the manifest command
	ExitCode int    // -1 when killed or not started
	Duration time.Duration
	LogFile  string // LogDir/<op>.log: one file per op, replaced by each run (the previous one kept as <op>.log.1)
	Tail     string // last ≤ 2 KiB of output, control characters escaped
	Degraded string // why the CPU limit is not applied ("" when it is, or when no limit was asked)
	Cgroup   string // the cgroup the command ran in ("" if none)
	// CPUTime is the CPU time the cgroup's counters charged to the command
	// and its children (0 when not measured).
	CPUTime time.Duration
	// Throttled is the number of CFS periods the cgroup was throttled in
	// (-1 when not measured).
	Throttled int64
	// Dropped is the number of output bytes beyond MaxOutput not logged.
	Dropped int64
	// KeptCgroup is true when processes the command started were still
	// running in its cgroup afterwards (the cgroup is kept, still limited).
	KeptCgroup bool
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) timeout(op Op) time.Duration {
	if d, ok := r.Timeouts[op]; ok && d > 0 {
		return d
	}
	return DefaultTimeout
}

// ShellCommand is the /bin/sh -c script for a manifest command run in dir,
// as waagent builds it: a command whose program is a path relative to the
// extension ("bin/run.sh enable") is prefixed with the quoted extension
// directory; any other command (absolute path, or a program found on PATH)
// is run as written.
func ShellCommand(dir, command string) string {
	command = strings.TrimSpace(command)
	if extensions.CommandProgram(command) == "" {
		return command
	}
	return shellQuote(dir) + "/" + strings.TrimPrefix(command, "./")
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Run runs the manifest command for op in ext.Dir, the way waagent does:
// through /bin/sh -c (see ShellCommand), working directory ext.Dir, in its
// own process group, with the environment
//
//	PATH=DefaultPath HOME=<$HOME or /> LANG=C
//	ConfigSequenceNumber=<seq>
//	AZURE_GUEST_AGENT_EXTENSION_PATH=<ext.Dir>
//	AZURE_GUEST_AGENT_EXTENSION_VERSION=<ext.Version>
//	Runner.Env...
//
// stdin from /dev/null and stdout and stderr together into LogDir/<op>.log
// (at most MaxOutput bytes; the rest is dropped with a note). On timeout
// or cancellation of ctx, the whole process group and every process of the
// extension's cgroup are killed and the error (CodeCommandTimeout) says
// which op timed out after how long. A non-zero exit is CodeCommandFailed
// naming op, exit code and log file. Result is returned whenever the
// command started, with or without an error.
//
// With a CPULimit, the command runs in the child cgroup
// <CgroupRoot>/arcagent.slice/<Publisher.Type-Version>: cgroup v2 with
// cpu.max (the process is created inside it, SysProcAttr.CgroupFD), else
// the cgroup v1 cpu controller with cpu.cfs_quota_us (the shell is moved in
// before it runs the command); when neither is writable the command runs
// anyway and Result.Degraded says why. The child is removed afterwards
// unless processes the command left running are still in it.
func (r *Runner) Run(ctx context.Context, ext Extension, op Op, seq int) (*Result, error) {
	if err := ext.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(CodeCommandTimeout, err, "%s of %s was not started: the extension manager is stopping", op, ext.FullName())
	}
	command := Command(ext.Manifest, op)
	if strings.TrimSpace(command) == "" {
		return nil, fail(CodeCommandStart, nil, "extension %s: HandlerManifest.json has no %s command", ext.FullName(), op)
	}
	if r.CPULimit < 0 || r.CPULimit > 100 {
		return nil, fail(CodeCommandStart, nil, "CPU limit %d%% is out of range 1..100 (0 = no limit)", r.CPULimit)
	}
	if fi, err := os.Stat(ext.Dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return nil, fail(CodeCommandStart, err, "extension directory %s", ext.Dir)
	}
	if err := os.MkdirAll(filepath.Dir(ext.LogDir), 0o700); err != nil {
		return nil, fail(CodeHandlerFiles, err, "create the parent of log directory %s", ext.LogDir)
	}
	if err := privateDir(ext.LogDir); err != nil {
		return nil, fail(CodeHandlerFiles, err, "prepare %s", ext.LogDir)
	}
	res := &Result{Op: op, Command: command, ExitCode: -1, Throttled: -1,
		LogFile: filepath.Join(ext.LogDir, string(op)+".log")}
	logf, err := openLog(res.LogFile)
	if err != nil {
		return nil, fail(CodeHandlerFiles, err, "open log file %s", res.LogFile)
	}
	defer logf.Close()
	log := r.logger().With("extension", ext.FullName(), "op", string(op), "seq", seq)

	var cg *cgroup
	if r.CPULimit > 0 {
		root := r.CgroupRoot
		if root == "" {
			root = DefaultCgroupRoot
		}
		cg, res.Degraded = setupCgroup(root, ext.FullName(), r.CPULimit)
		if cg != nil {
			res.Cgroup = cg.dir
		}
	}

	home := os.Getenv("HOME")
	if home == "" {
		home = "/"
	}
	env := append([]string{
		"PATH=" + DefaultPath,
		"HOME=" + home,
		"LANG=C",
		"ConfigSequenceNumber=" + strconv.Itoa(seq),
		"AZURE_GUEST_AGENT_EXTENSION_PATH=" + ext.Dir,
		"AZURE_GUEST_AGENT_EXTENSION_VERSION=" + ext.Version,
	}, r.Env...)
	script := ShellCommand(ext.Dir, command)
	fmt.Fprintf(logf, "# arcagent %s: %s of %s, ConfigSequenceNumber=%d: %s\n",
		time.Now().UTC().Format(time.RFC3339), op, ext.FullName(), seq, command)

	// The child may be reused (a daemon of an earlier enable still runs in
	// it): the counters are charged to this command as differences.
	var cpu0 time.Duration
	var thr0 int64
	if cg != nil {
		cpu0, thr0 = cg.usage()
	}
	start := time.Now()
	cmd, outR, joinErr, err := startCommand(ext.Dir, script, env, cg)
	if err != nil && cg != nil && cg.version == 2 {
		// An older kernel cannot create a process inside a cgroup (clone3,
		// Linux 5.7): run without the limit rather than not at all.
		res.Degraded = fmt.Sprintf("CPU limit not applied (cgroup v2: the command could not be started inside %s: %v)", cg.dir, err)
		cg.release()
		cg, res.Cgroup = nil, ""
		cmd, outR, _, err = startCommand(ext.Dir, script, env, nil)
	}
	if err != nil {
		if cg != nil {
			cg.release()
		}
		fmt.Fprintf(logf, "# arcagent: could not start: %v\n", err)
		return nil, fail(CodeCommandStart, err, "start the %s command of %s", op, ext.FullName())
	}
	if joinErr != nil {
		res.Degraded = "CPU limit not applied (cgroup v1: " + joinErr.Error() + ")"
		cg.release()
		cg, res.Cgroup = nil, ""
	}
	if res.Degraded != "" && r.CPULimit > 0 && cg == nil {
		log.Warn("running without a CPU limit", "reason", res.Degraded)
	}
	pgid := cmd.Process.Pid

	out := newOutput(logf, r.maxOutput())
	copied := make(chan struct{})
	go func() {
		out.copyFrom(outR)
		outR.Close()
		close(copied)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	timeout := r.timeout(op)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var waitErr, stopErr error
	select {
	case waitErr = <-waited:
	case <-timer.C:
		stopErr = fail(CodeCommandTimeout, nil, "%s of %s timed out after %s; the command and the processes it started were killed (log: %s)",
			op, ext.FullName(), timeout, res.LogFile)
	case <-ctx.Done():
		stopErr = fail(CodeCommandTimeout, ctx.Err(), "%s of %s was stopped after %s; the command and the processes it started were killed (log: %s)",
			op, ext.FullName(), time.Since(start).Round(time.Millisecond), res.LogFile)
	}
	if stopErr != nil {
		killGroup(pgid)
		if cg != nil {
			cg.kill()
		}
		waitErr = <-waited
	}
	res.Duration = time.Since(start)
	select {
	case <-copied:
	case <-time.After(outputGrace):
		// A process the command left behind still holds the output: it is
		// drained (and discarded) until it closes it.
	}
	res.Tail, res.Dropped = out.finish()
	if cg != nil {
		cpu, thr := cg.usage()
		res.CPUTime = cpu - cpu0
		if thr >= 0 && thr0 >= 0 {
			res.Throttled = thr - thr0
		}
		res.KeptCgroup = cg.release()
	}

	var ee *exec.ExitError
	signal := ""
	switch {
	case stopErr != nil:
		fmt.Fprintf(logf, "# arcagent: killed after %s\n", res.Duration.Round(time.Millisecond))
	case waitErr == nil:
		res.ExitCode = 0
	case errors.As(waitErr, &ee):
		res.ExitCode = ee.ExitCode() // -1 when killed by a signal
		if s, ok := signalOf(ee); ok {
			signal = s
		}
	default:
		stopErr = fail(CodeCommandFailed, waitErr, "%s of %s: waiting for the command", op, ext.FullName())
	}
	switch {
	case stopErr != nil:
	case signal != "":
		fmt.Fprintf(logf, "# arcagent: killed by signal %s after %s\n", signal, res.Duration.Round(time.Millisecond))
		stopErr = fail(CodeCommandFailed, nil, "%s of %s was killed by signal %s (log: %s)", op, ext.FullName(), signal, res.LogFile)
	default:
		fmt.Fprintf(logf, "# arcagent: exit code %d after %s\n", res.ExitCode, res.Duration.Round(time.Millisecond))
		if res.ExitCode != 0 {
			stopErr = fail(CodeCommandFailed, nil, "%s of %s exited with code %d (log: %s)", op, ext.FullName(), res.ExitCode, res.LogFile)
		}
	}
	log.Info("handler command finished", "exit", res.ExitCode, "duration", res.Duration,
		"cgroup", res.Cgroup, "degraded", res.Degraded, "dropped", res.Dropped)
	return res, stopErr
}

// startCommand starts /bin/sh -c script in dir with env, in its own
// process group, its output on the returned pipe. In a v2 cgroup the
// process is created inside it; in a v1 cgroup the shell first waits on a
// pipe (fd 3) until its pid is written into the cgroup, so that nothing of
// the command runs outside it. joinErr says why a v1 join failed (the
// command then runs outside the cgroup).
func startCommand(dir, script string, env []string, cg *cgroup) (cmd *exec.Cmd, outR *os.File, joinErr, err error) {
	var gateR, gateW *os.File
	if cg != nil && cg.version == 1 {
		if gateR, gateW, err = os.Pipe(); err != nil {
			return nil, nil, nil, err
		}
		defer gateW.Close()
		script = "read -r _ <&3 || exit 125; exec 3<&-; " + script
	}
	cmd = exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = env
	ownGroup(cmd, cg)
	if gateR != nil {
		cmd.ExtraFiles = []*os.File{gateR}
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		if gateR != nil {
			gateR.Close()
		}
		return nil, nil, nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, outW
	err = cmd.Start()
	outW.Close()
	if gateR != nil {
		gateR.Close()
	}
	if err != nil {
		outR.Close()
		return nil, nil, nil, err
	}
	if gateW != nil {
		joinErr = cg.join(cmd.Process.Pid)
		_, _ = gateW.Write([]byte("\n"))
	}
	return cmd, outR, joinErr, nil
}

func (r *Runner) maxOutput() int64 {
	if r.MaxOutput > 0 {
		return r.MaxOutput
	}
	return DefaultMaxOutput
}

// openLog keeps the previous log as .1 and creates a new one (0600, never
// through a link).
func openLog(path string) (*os.File, error) {
	if err := os.Rename(path, path+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow|syscall.O_CLOEXEC, 0o600)
}

// output copies a command's output into its log file up to a limit and
// keeps the last TailSize bytes.
type output struct {
	mu      sync.Mutex
	w       io.Writer // nil once finished
	limit   int64
	written int64
	dropped int64
	tail    []byte
}

func newOutput(w io.Writer, limit int64) *output { return &output{w: w, limit: limit} }

func (o *output) copyFrom(r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			o.add(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func (o *output) add(p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.w == nil {
		return
	}
	o.tail = append(o.tail, p...)
	if len(o.tail) > TailSize {
		o.tail = append(o.tail[:0], o.tail[len(o.tail)-TailSize:]...)
	}
	keep := int64(len(p))
	if room := o.limit - o.written; keep > room {
		keep = max(room, 0)
	}
	if keep > 0 {
		_, _ = o.w.Write(p[:keep])
		o.written += keep
	}
	if rest := int64(len(p)) - keep; rest > 0 {
		if o.dropped == 0 {
			fmt.Fprintf(o.w, "\n# arcagent: output beyond %d bytes is not kept\n", o.limit)
		}
		o.dropped += rest
	}
}

// finish stops logging and returns the tail and the dropped byte count.
func (o *output) finish() (string, int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.w != nil && o.dropped > 0 {
		fmt.Fprintf(o.w, "# arcagent: %d bytes of output dropped\n", o.dropped)
	}
	o.w = nil
	t := o.tail
	for len(t) > 0 && !utf8.RuneStart(t[0]) {
		t = t[1:]
	}
	return safetext.Text(strings.ToValidUTF8(string(t), "\uFFFD")), o.dropped
}
