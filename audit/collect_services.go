package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/agent/proxy"
	"github.com/arcagent/arcagent/internal/saferead"
)

func expectedServices() map[string]ServiceSpec {
	out := map[string]ServiceSpec{}
	for _, s := range layout.Services() {
		out[s.Name] = ServiceSpec{User: s.User, Port: s.Port}
	}
	return out
}

// unitDirs are searched in systemd's order of precedence.
var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}

func (c *collector) collectServices(ctx context.Context) {
	sf := &c.facts.Services
	sf.Available = true
	sf.Units = map[string]UnitFacts{}
	sf.Processes = map[string][]Process{}
	sf.Listeners = map[string][]Listener{}
	sf.Expected = expectedServices()
	sf.ProxyProbes = []ProxyProbe{}
	sf.ProxyOn = c.settings != nil && proxy.On(c.settings)
	for _, s := range layout.Services() {
		sf.Units[s.Name] = c.readUnit(s.Name)
		sf.Processes[s.Name] = []Process{}
		sf.Listeners[s.Name] = []Listener{}
	}
	if !c.facts.Target.Live {
		sf.ProcReason = "running processes and sockets are only read on the live host, not under --root"
		return
	}
	sf.ProcAvailable = true
	c.readProcesses(sf)
	c.readListeners(sf)
	c.collectProxyProbes(ctx, sf)
}

// readUnit parses the [Service] section of a unit and its drop-ins.
func (c *collector) readUnit(name string) UnitFacts {
	u := UnitFacts{}
	var files []string
	for _, d := range unitDirs {
		p := d + "/" + name + ".service"
		if c.exists(p) {
			u.Present, u.Path = true, layout.Rel(p)
			files = append(files, p)
			break
		}
	}
	if !u.Present {
		return u
	}
	for _, d := range unitDirs {
		files = append(files, c.glob(d+"/"+name+".service.d/*.conf")...)
	}
	for _, f := range files {
		b, err := c.read(f, saferead.ConfigLimit)
		if err != nil {
			// Without the unit we cannot say who the service runs as:
			// the service rules error rather than guess.
			c.errorf("services", f, "cannot read unit: %v", err)
			sf := &c.facts.Services
			sf.Available, sf.Error = false, true
			sf.Reason = "cannot read unit file " + layout.Rel(f) + ": " + err.Error()
			continue
		}
		section := ""
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if strings.HasPrefix(line, "[") {
				section = line
				continue
			}
			if section != "[Service]" || line == "" || line[0] == '#' || line[0] == ';' {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "User":
				u.User = strings.TrimSpace(v)
			case "Group":
				u.Group = strings.TrimSpace(v)
			case "ExecStart":
				if v = strings.TrimSpace(v); v != "" {
					u.ExecStart = v
				}
			}
		}
	}
	if u.User == "" {
		u.User = "root"
	}
	return u
}

// daemonOf maps a command line to the service it runs, or "".
func daemonOf(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	base := filepath.Base(argv[0])
	switch base {
	case "himdsd", "himds", "extd", "gcad", "arcproxyd":
		if base == "himds" {
			return "himdsd"
		}
		return base
	}
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] != "daemon" {
			continue
		}
		switch argv[i+1] {
		case "himds", "himdsd":
			return "himdsd"
		case "extd", "extensions":
			return "extd"
		case "gcad", "guestconfig":
			return "gcad"
		case "proxy", "arcproxy", "arcproxyd":
			return "arcproxyd"
		}
	}
	return ""
}

// Bounds of the /proc reads on the live host: a process's cmdline and
// status, and /proc/net/tcp{,6} (about 150 bytes a socket).
const (
	procFileLimit = 1 << 20
	procNetLimit  = 16 << 20
)

func (c *collector) readProcesses(sf *ServicesFacts) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		sf.ProcAvailable = false
		sf.ProcReason = "cannot read /proc: " + err.Error()
		return
	}
	self := os.Getpid()
	var buf []byte
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		buf, err = saferead.ReadBounded("/proc/"+e.Name()+"/cmdline", buf[:0], procFileLimit)
		if err != nil || len(buf) == 0 || !mayBeDaemon(buf) {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(buf), "\x00"), "\x00")
		svc := daemonOf(argv)
		if svc == "" {
			continue
		}
		var uid int
		buf, uid = procUID("/proc/"+e.Name()+"/status", buf[:0])
		sf.Processes[svc] = append(sf.Processes[svc], Process{PID: pid, UID: uid, User: c.acct.userName(uid), Cmdline: strings.Join(argv, " ")})
	}
}

// daemonWords are in every command line daemonOf recognises: most
// processes are ruled out without splitting their command line.
var daemonWords = [][]byte{[]byte("himds"), []byte("extd"), []byte("gcad"), []byte("arcproxyd"), []byte("daemon")}

func mayBeDaemon(cmdline []byte) bool {
	for _, w := range daemonWords {
		if bytes.Contains(cmdline, w) {
			return true
		}
	}
	return false
}

// procUID returns the effective uid from /proc/PID/status, -1 if unknown,
// and the buffer for reuse.
func procUID(path string, buf []byte) ([]byte, int) {
	buf, err := saferead.ReadBounded(path, buf, procFileLimit)
	if err != nil {
		return buf, -1
	}
	_, rest, ok := bytes.Cut(buf, []byte("\nUid:"))
	if !ok {
		return buf, -1
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) >= 2 {
		if n, err := strconv.Atoi(f[1]); err == nil {
			return buf, n
		}
	}
	return buf, -1
}

func (c *collector) readListeners(sf *ServicesFacts) {
	ports := map[int]string{}
	for name, s := range sf.Expected {
		if s.Port != 0 {
			ports[s.Port] = name
		}
	}
	ls, err := netlinkListeners()
	if err != nil {
		ls = procListeners()
	}
	for _, l := range ls {
		if svc, ok := ports[l.Port]; ok {
			sf.Listeners[svc] = append(sf.Listeners[svc], l)
		}
	}
}

// procListeners reads the listening sockets from /proc/net/tcp{,6}, for
// kernels without sock_diag.
func procListeners() []Listener {
	var out []Listener
	var buf []byte
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		var err error
		buf, err = saferead.ReadBounded(file, buf[:0], procNetLimit)
		if err != nil {
			continue
		}
		out = append(out, parseProcNetTCP(buf)...)
	}
	return out
}

// parseProcNetTCP returns the listening sockets in a /proc/net/tcp{,6}
// file. The state (the fourth field) is checked before anything else, so
// the thousands of TIME_WAIT and ESTABLISHED lines of a busy host cost a
// scan of their first bytes only.
func parseProcNetTCP(b []byte) []Listener {
	var out []Listener
	// The first line is the header.
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	} else {
		return nil
	}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if !stateIsListen(line) {
			continue
		}
		f := strings.Fields(string(line))
		if len(f) < 8 {
			continue
		}
		hostHex, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			continue
		}
		ip := decodeProcIP(hostHex)
		if ip == nil {
			continue
		}
		uid, _ := strconv.Atoi(f[7])
		out = append(out, Listener{Address: ip.String(), Port: int(port), Loopback: ip.IsLoopback(), UID: uid})
	}
	return out
}

// stateIsListen reports whether the fourth whitespace-separated field of
// a /proc/net/tcp line is 0A (TCP_LISTEN), without allocating.
func stateIsListen(line []byte) bool {
	i := 0
	for field := 0; ; field++ {
		for i < len(line) && asciiSpace(line[i]) {
			i++
		}
		start := i
		for i < len(line) && !asciiSpace(line[i]) {
			i++
		}
		if start == i {
			return false
		}
		if field == 3 {
			return i-start == 2 && line[start] == '0' && line[start+1] == 'A'
		}
	}
}

func asciiSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\r' || b == '\v' || b == '\f'
}

// decodeProcIP decodes the kernel's hex form: 32-bit words in host (little
// endian) order.
func decodeProcIP(h string) net.IP {
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	if v4 := ip.To4(); v4 != nil && len(raw) == 16 {
		return v4
	}
	return ip
}
