package himds

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/internal/buildinfo"
)

// ProductUUID is the production path of the DMI product UUID, reported as
// the machine's vmId.
const ProductUUID = "/sys/class/dmi/id/product_uuid"

// CollectInventory describes this machine as registration and heartbeats
// report it: host name, OS (type, name and version from os-release, the
// running kernel), architecture, CPUs, the DMI product UUID read under the
// layout's root, and the agent version (agentVersion, or the build's when
// empty).
func CollectInventory(l layout.Layout, agentVersion string) apiv1.Inventory {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	if agentVersion == "" {
		agentVersion = buildinfo.Get().Version
	}
	inv := apiv1.Inventory{Hostname: host, OSType: runtime.GOOS, Arch: runtime.GOARCH, AgentVersion: agentVersion, CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		inv.Kernel = clip(strings.TrimSpace(string(b)))
	}
	if b, err := os.ReadFile(l.Path(ProductUUID)); err == nil {
		inv.VMID = clip(strings.ToLower(strings.TrimSpace(string(b))))
	}
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if b, err := readSmall(l.Path(p)); err == nil {
			inv.OSName, inv.OSVersion = parseOSRelease(b)
			break
		}
	}
	return inv
}

// InventoryDigest identifies an inventory's content, so that a heartbeat
// sends it only when it changed.
func InventoryDigest(inv apiv1.Inventory) string {
	b, _ := json.Marshal(inv)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// readSmall reads at most 64 KiB of a file.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n, err := f.Read(buf)
	if n == 0 && err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// parseOSRelease returns NAME and VERSION_ID of an os-release(5) file
// (VERSION when VERSION_ID is absent), unquoted and bounded as the
// control plane accepts them.
func parseOSRelease(b []byte) (name, version string) {
	var ver string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		} else {
			v = strings.Trim(v, `"'`)
		}
		switch k {
		case "NAME":
			name = v
		case "VERSION_ID":
			version = v
		case "VERSION":
			ver = v
		}
	}
	if version == "" {
		version = ver
	}
	return clip(printableOnly(name)), clip(printableOnly(version))
}

// clip bounds a reported field to what the control plane accepts.
func clip(s string) string {
	if len(s) > 256 {
		s = strings.ToValidUTF8(s[:256], "")
	}
	return s
}

// printableOnly drops control characters, which the control plane refuses.
func printableOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
