package upgrade

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
)

// System is what an upgrade changes: the package manager and the service
// manager. NewSystem returns the real one (dpkg and systemd); tests and
// hosts without systemd give their own.
type System interface {
	// InstalledVersion is the installed version of the agent package.
	InstalledVersion(ctx context.Context) (string, error)
	// Install installs a verified package file.
	Install(ctx context.Context, pkg string) error
	// Running reports whether a service manager runs the agent's services
	// here (false in a chroot or an image tree).
	Running() bool
	// ActiveUnits returns those of units that are running now, in order.
	ActiveUnits(ctx context.Context, units []string) ([]string, error)
	// Reload makes the service manager read the units again.
	Reload(ctx context.Context) error
	// MainPID is the main process of a running unit (0: none).
	MainPID(ctx context.Context, unit string) int
	// Restart restarts one unit.
	Restart(ctx context.Context, unit string) error
	// WaitRunning waits until unit runs (and, for HIMDS, answers).
	WaitRunning(ctx context.Context, unit string, timeout time.Duration) error
}

// Debian is the System of a Debian machine or root prefix: dpkg, and
// systemd when it runs (only for the root "/").
type Debian struct {
	Layout layout.Layout
	// HIMDSAddr is where HIMDS answers once restarted ("" is 127.0.0.1:40342).
	HIMDSAddr string
}

// NewSystem returns the Debian system of l.
func NewSystem(l layout.Layout) *Debian { return &Debian{Layout: l} }

// maxOutput bounds what is kept of a command's output for a message.
const maxOutput = 4 << 10

func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	s := strings.TrimSpace(out.String())
	if len(s) > maxOutput {
		s = "…" + s[len(s)-maxOutput:]
	}
	if err != nil {
		if s != "" {
			return s, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, s)
		}
		return s, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return s, nil
}

func (d *Debian) dpkgRoot() []string {
	if d.Layout.IsSystemRoot() {
		return nil
	}
	return []string{"--root=" + d.Layout.Root()}
}

// InstalledVersion asks dpkg-query for the installed arcagent package.
func (d *Debian) InstalledVersion(ctx context.Context) (string, error) {
	args := []string{"-W", "-f=${db:Status-Status} ${Version}", Product}
	if !d.Layout.IsSystemRoot() {
		args = append([]string{"--admindir=" + d.Layout.Path("/var/lib/dpkg")}, args...)
	}
	out, err := run(ctx, "dpkg-query", args...)
	if err != nil {
		return "", errcode.Wrap(CodeInstallFailed, err, "the arcagent package is not installed with dpkg here: upgrade replaces an installed package")
	}
	status, version, _ := strings.Cut(out, " ")
	if status != "installed" || version == "" {
		return "", errcode.New(CodeInstallFailed, "the arcagent package is %q, not installed: repair it with dpkg --configure -a", status)
	}
	return version, nil
}

// Install runs dpkg -i, keeping the operator's conffiles (localconfig.json)
// and never asking.
func (d *Debian) Install(ctx context.Context, pkg string) error {
	args := append(d.dpkgRoot(), "--force-confdef", "--force-confold", "-i", pkg)
	_, err := run(ctx, "dpkg", args...)
	return err
}

// Running reports whether systemd runs this machine (sd_booted) and the
// layout is the live system.
func (d *Debian) Running() bool {
	if !d.Layout.IsSystemRoot() {
		return false
	}
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// ActiveUnits asks systemctl is-active for each unit.
func (d *Debian) ActiveUnits(ctx context.Context, units []string) ([]string, error) {
	if !d.Running() {
		return nil, nil
	}
	var out []string
	for _, u := range units {
		if s, _ := run(ctx, "systemctl", "is-active", u+".service"); s == "active" {
			out = append(out, u)
		}
	}
	return out, nil
}

// Reload is systemctl daemon-reload.
func (d *Debian) Reload(ctx context.Context) error {
	_, err := run(ctx, "systemctl", "daemon-reload")
	return err
}

// MainPID is systemctl show -p MainPID.
func (d *Debian) MainPID(ctx context.Context, unit string) int {
	out, err := run(ctx, "systemctl", "show", "-p", "MainPID", "--value", unit+".service")
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(out))
	return pid
}

// Restart is systemctl restart.
func (d *Debian) Restart(ctx context.Context, unit string) error {
	_, err := run(ctx, "systemctl", "restart", unit+".service")
	return err
}

// WaitRunning polls systemctl is-active and, for himdsd, HIMDS's API.
func (d *Debian) WaitRunning(ctx context.Context, unit string, timeout time.Duration) error {
	addr := d.HIMDSAddr
	if addr == "" {
		addr = "127.0.0.1:40342"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		s, _ := run(ctx, "systemctl", "is-active", unit+".service")
		last = s
		if s == "active" && (unit != "himdsd" || Answers(ctx, addr)) {
			return nil
		}
		if s == "failed" {
			return fmt.Errorf("%s.service failed", unit)
		}
		select {
		case <-ctx.Done():
			if last == "active" {
				return fmt.Errorf("%s.service is active but HIMDS does not answer on %s after %s", unit, addr, timeout)
			}
			return fmt.Errorf("%s.service is %q after %s", unit, last, timeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Answers reports whether HIMDS answers an HTTP request on addr (any
// status: the listener is up and serving).
func Answers(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/agentstatus", nil)
	if err != nil {
		return false
	}
	req.Header.Set("Metadata", "true")
	tr := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{}).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}
