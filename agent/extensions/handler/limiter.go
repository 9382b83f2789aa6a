package handler

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
)

// CPULimiter runs commands of another service (guest configuration) in one
// CPU-limited child cgroup of SliceName, set up as for extension handlers.
// When no writable cgroup exists Reason says why and commands run
// without the limit (never not at all).
type CPULimiter struct {
	mu sync.Mutex
	cg *cgroup
	// degraded says why the limit is not applied; "" when it is.
	degraded string
}

// NewCPULimiter creates (or reuses) the child cgroup name under root
// (DefaultCgroupRoot when "") limited to limit percent of one CPU. A limit
// of 0 or less means no limit and no cgroup.
func NewCPULimiter(root, name string, limit int) *CPULimiter {
	l := &CPULimiter{}
	if limit <= 0 {
		return l
	}
	if root == "" {
		root = DefaultCgroupRoot
	}
	l.cg, l.degraded = setupCgroup(root, name, limit)
	return l
}

// Dir is the cgroup commands run in, "" without one.
func (l *CPULimiter) Dir() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cg == nil {
		return ""
	}
	return l.cg.dir
}

// Run starts cmd inside the cgroup and waits for it. In a v2 cgroup the
// process is created inside it (clone3); in a v1 cgroup it is moved there
// right after it started. When the cgroup cannot take the command it runs
// without the limit and Reason says why.
func (l *CPULimiter) Run(cmd *exec.Cmd) error {
	l.mu.Lock()
	cg := l.cg
	l.mu.Unlock()
	if cg == nil {
		return cmd.Run()
	}
	if cg.version == 2 {
		plain := *cmd // an unstarted copy for the fallback
		withCgroupFD(cmd, cg.fd)
		if err := cmd.Start(); err != nil {
			var ee *exec.Error
			if errors.As(err, &ee) {
				return err // the program itself is missing
			}
			l.degrade(fmt.Sprintf("CPU limit not applied (cgroup v2: the command could not be started inside %s: %v)", cg.dir, err))
			return plain.Run()
		}
		return cmd.Wait()
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := cg.join(cmd.Process.Pid); err != nil {
		l.degrade("CPU limit not applied (cgroup v1: " + err.Error() + ")")
	}
	return cmd.Wait()
}

func (l *CPULimiter) degrade(reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cg != nil {
		l.cg.release()
		l.cg = nil
	}
	l.degraded = reason
}

// Reason says why the CPU limit is not applied, "" when it is.
func (l *CPULimiter) Reason() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.degraded
}

// Close releases the cgroup (removed when no process is left in it).
func (l *CPULimiter) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cg != nil {
		l.cg.release()
		l.cg = nil
	}
}
