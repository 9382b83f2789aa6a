//go:build !windows

package handler

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroup is the per-extension child cgroup a command runs in.
type cgroup struct {
	version int    // 2 or 1
	dir     string // the cpu child (v2: the only one)
	acct    string // v1: a cpuacct child when cpuacct is a separate hierarchy
	fd      int    // v2: the opened child, for SysProcAttr.CgroupFD; -1 otherwise
}

// setupCgroup creates (or reuses) the child cgroup of the extension named
// name with a CPU limit of limit percent of one CPU. It tries cgroup v2
// (at root, or at root/unified on a hybrid host) and then the v1 cpu
// controller; when neither can be used it returns nil and the reasons.
func setupCgroup(root, name string, limit int) (*cgroup, string) {
	var reasons []string
	cg, err := setupV2(root, name, limit)
	if err == nil {
		return cg, ""
	}
	reasons = append(reasons, "cgroup v2: "+err.Error())
	cg, err = setupV1(root, name, limit)
	if err == nil {
		return cg, ""
	}
	reasons = append(reasons, "cgroup v1: "+err.Error())
	return nil, "CPU limit not applied (" + strings.Join(reasons, "; ") + ")"
}

func setupV2(root, name string, limit int) (*cgroup, error) {
	base := ""
	for _, c := range []string{root, filepath.Join(root, "unified")} {
		if _, err := os.Stat(filepath.Join(c, "cgroup.controllers")); err == nil {
			base = c
			break
		}
	}
	if base == "" {
		return nil, fmt.Errorf("no cgroup2 hierarchy at %s or %s/unified", root, root)
	}
	ctrl, err := os.ReadFile(filepath.Join(base, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	if !hasWord(string(ctrl), "cpu") {
		return nil, fmt.Errorf("the hierarchy at %s has no cpu controller (it offers %q)", base, strings.TrimSpace(string(ctrl)))
	}
	if err := enableCPU(base); err != nil {
		return nil, err
	}
	slice := filepath.Join(base, SliceName)
	if err := mkdirCgroup(slice); err != nil {
		return nil, err
	}
	if err := enableCPU(slice); err != nil {
		return nil, err
	}
	dir := filepath.Join(slice, name)
	if err := mkdirCgroup(dir); err != nil {
		return nil, err
	}
	quota := limit * cpuPeriod / 100
	if err := writeCgroup(dir, "cpu.max", fmt.Sprintf("%d %d", quota, cpuPeriod)); err != nil {
		_ = os.Remove(dir)
		return nil, err
	}
	fd, err := openDir(dir)
	if err != nil {
		_ = os.Remove(dir)
		return nil, err
	}
	return &cgroup{version: 2, dir: dir, fd: fd}, nil
}

func openDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", dir, err)
	}
	return fd, nil
}

// enableCPU adds cpu to dir's cgroup.subtree_control unless it is there.
func enableCPU(dir string) error {
	cur, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	if hasWord(string(cur), "cpu") {
		return nil
	}
	return writeCgroup(dir, "cgroup.subtree_control", "+cpu")
}

func setupV1(root, name string, limit int) (*cgroup, error) {
	cpuRoot := filepath.Join(root, "cpu")
	if _, err := os.Stat(filepath.Join(cpuRoot, "cpu.cfs_quota_us")); err != nil {
		return nil, fmt.Errorf("no cpu controller mounted at %s", cpuRoot)
	}
	slice := filepath.Join(cpuRoot, SliceName)
	if err := mkdirCgroup(slice); err != nil {
		return nil, err
	}
	dir := filepath.Join(slice, name)
	if err := mkdirCgroup(dir); err != nil {
		return nil, err
	}
	if err := writeCgroup(dir, "cpu.cfs_period_us", strconv.Itoa(cpuPeriod)); err != nil {
		_ = os.Remove(dir)
		return nil, err
	}
	if err := writeCgroup(dir, "cpu.cfs_quota_us", strconv.Itoa(limit*cpuPeriod/100)); err != nil {
		_ = os.Remove(dir)
		return nil, err
	}
	cg := &cgroup{version: 1, dir: dir, fd: -1}
	// Accounting, for the figures in Result: in the cpu child itself when
	// cpu and cpuacct share a hierarchy, else in a cpuacct child (best
	// effort: the limit does not depend on it).
	if _, err := os.Stat(filepath.Join(dir, "cpuacct.usage")); err != nil {
		acctRoot := filepath.Join(root, "cpuacct")
		if _, err := os.Stat(filepath.Join(acctRoot, "cpuacct.usage")); err == nil {
			a := filepath.Join(acctRoot, SliceName, name)
			if mkdirCgroup(filepath.Dir(a)) == nil && mkdirCgroup(a) == nil {
				cg.acct = a
			}
		}
	}
	return cg, nil
}

func mkdirCgroup(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

func writeCgroup(dir, file, value string) error {
	p := filepath.Join(dir, file)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	_, werr := f.WriteString(value)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, werr)
	}
	if cerr != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, cerr)
	}
	return nil
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// join moves pid into the cgroup (v1; a v2 child is joined at clone).
func (c *cgroup) join(pid int) error {
	dirs := []string{c.dir}
	if c.acct != "" {
		dirs = append(dirs, c.acct)
	}
	for i, d := range dirs {
		if err := writeCgroup(d, "cgroup.procs", strconv.Itoa(pid)); err != nil && i == 0 {
			return err
		}
	}
	return nil
}

// pids lists the processes in the cgroup.
func (c *cgroup) pids() []int {
	data, err := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// kill kills every process in the cgroup (cgroup.kill where the kernel
// has it, else SIGKILL to each listed process, a few rounds to catch
// processes forked meanwhile).
func (c *cgroup) kill() {
	if c.version == 2 && writeCgroup(c.dir, "cgroup.kill", "1") == nil {
		return
	}
	for range 5 {
		p := c.pids()
		if len(p) == 0 {
			return
		}
		for _, pid := range p {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// usage returns the CPU time used in the cgroup and the number of periods
// it was throttled in (-1 when unknown).
func (c *cgroup) usage() (time.Duration, int64) {
	stat := readKV(filepath.Join(c.dir, "cpu.stat"))
	thr := int64(-1)
	if v, ok := stat["nr_throttled"]; ok {
		thr = v
	}
	if c.version == 2 {
		return time.Duration(stat["usage_usec"]) * time.Microsecond, thr
	}
	acct := c.dir
	if c.acct != "" {
		acct = c.acct
	}
	data, err := os.ReadFile(filepath.Join(acct, "cpuacct.usage"))
	if err != nil {
		return 0, thr
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return time.Duration(n), thr
}

func readKV(path string) map[string]int64 {
	out := map[string]int64{}
	data, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				out[f[0]] = n
			}
		}
	}
	return out
}

// release closes the descriptor and removes the child (and the cpuacct
// child) when no process is left in it; a child still holding processes
// (a daemon the enable command started) is kept, and stays limited.
func (c *cgroup) release() (kept bool) {
	if c.fd >= 0 {
		_ = unix.Close(c.fd)
		c.fd = -1
	}
	if c.acct != "" {
		_ = os.Remove(c.acct)
	}
	// The kernel may need a moment to drop exited processes from the list.
	for range 20 {
		if err := os.Remove(c.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return false
		}
		if len(c.pids()) > 0 {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

const cpuPeriod = 100000 // µs
