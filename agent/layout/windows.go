package layout

import (
	"os"
	"strings"
)

// The Windows layout, for the pre-onboarding audit of a Windows server (a
// domain controller is the seed's Tier 0 example). The Linux production
// paths above stay the names every package uses; on Windows Path maps them
// to where the Connected Machine agent keeps the same things:
//
//	/var/opt/azcmagent/localconfig.json  %ProgramData%\AzureConnectedMachineAgent\Config\localconfig.json
//	/var/opt/azcmagent/agentconfig.json  %ProgramData%\AzureConnectedMachineAgent\Config\agentconfig.json
//	/var/opt/azcmagent/{certs,tokens,…}  %ProgramData%\AzureConnectedMachineAgent\{Certs,Tokens,…}
//	/opt/azcmagent/bin                   %ProgramFiles%\AzureConnectedMachineAgent
//	/var/lib/GuestConfig                 %ProgramData%\GuestConfig
//	/var/lib/waagent                     %SystemDrive%\Packages\Plugins
//
// Owners and modes have no Windows form here (Windows has owner SIDs and
// ACLs): the entries' owners and modes are Linux facts, and the audit
// does not evaluate them on Windows.

// WindowsEnv holds the Windows folders the layout is resolved from.
type WindowsEnv struct {
	ProgramData  string // %ProgramData%, default C:\ProgramData
	ProgramFiles string // %ProgramFiles%, default C:\Program Files
	SystemDrive  string // %SystemDrive%, default C:
}

// WindowsAgentDir is the agent's folder under %ProgramData% (and under
// %ProgramFiles% for its binaries).
const WindowsAgentDir = "AzureConnectedMachineAgent"

// windowsBase names the folder of WindowsEnv a place is under.
type windowsBase int

const (
	programData windowsBase = iota
	programFiles
	systemDrive
)

// windowsPlaces maps production paths (and the trees under them) to their
// Windows place. The most specific path comes first.
var windowsPlaces = []struct {
	prod string
	base windowsBase
	rel  string
}{
	{LocalConfig, programData, WindowsAgentDir + `\Config\localconfig.json`},
	{AgentConfig, programData, WindowsAgentDir + `\Config\agentconfig.json`},
	{ProxyCredentials, programData, WindowsAgentDir + `\Config\proxy-credentials`},
	{CertsDir, programData, WindowsAgentDir + `\Certs`},
	{TokensDir, programData, WindowsAgentDir + `\Tokens`},
	{TrustDir, programData, WindowsAgentDir + `\Trust`},
	{LogDir, programData, WindowsAgentDir + `\Log`},
	{RunDir, programData, WindowsAgentDir + `\Run`},
	{StateDir, programData, WindowsAgentDir},
	{Binary, programFiles, WindowsAgentDir + `\arcagent.exe`},
	{BinDir, programFiles, WindowsAgentDir},
	{GuestConfigDir, programData, `GuestConfig`},
	{ExtensionsDir, systemDrive, `Packages\Plugins`},
}

// WindowsEnvFromOS reads the folders from the environment, with Windows'
// defaults for those that are unset.
func WindowsEnvFromOS() WindowsEnv {
	get := func(name, def string) string {
		if v := strings.TrimSpace(os.Getenv(name)); v != "" {
			return v
		}
		return def
	}
	return WindowsEnv{
		ProgramData:  get("ProgramData", `C:\ProgramData`),
		ProgramFiles: get("ProgramFiles", `C:\Program Files`),
		SystemDrive:  get("SystemDrive", `C:`),
	}
}

// NewWindows returns the Windows layout under root ("" or "/" for the
// machine itself; otherwise root holds the tree, e.g.
// root\ProgramData\AzureConnectedMachineAgent\Config\localconfig.json).
func NewWindows(root string, env WindowsEnv) Layout {
	l := Layout{root: "/", win: &env}
	if r := strings.TrimRight(root, `\/`); r != "" {
		l.root = r
	}
	return l
}

// IsWindows reports whether l is a Windows layout.
func (l Layout) IsWindows() bool { return l.win != nil }

// WindowsPath is the Windows place of the production path prod, without
// the root prefix, and whether it has one (unit files, /etc and /proc do
// not).
func (e WindowsEnv) WindowsPath(prod string) (string, bool) {
	prod = "/" + Rel(prod)
	for _, p := range windowsPlaces {
		if prod != p.prod && !strings.HasPrefix(prod, p.prod+"/") {
			continue
		}
		var base string
		switch p.base {
		case programData:
			base = e.ProgramData
		case programFiles:
			base = e.ProgramFiles
		default:
			base = e.SystemDrive
		}
		out := winJoin(base, p.rel)
		if rest := strings.TrimPrefix(prod, p.prod); rest != "" {
			out = winJoin(out, strings.ReplaceAll(strings.TrimPrefix(rest, "/"), "/", `\`))
		}
		return out, true
	}
	return "", false
}

// windowsPath is Path for a Windows layout.
func (l Layout) windowsPath(prod string) string {
	p, ok := l.win.WindowsPath(prod)
	if !ok {
		// No Windows place: the Linux path, which does not exist there.
		p = strings.ReplaceAll("/"+Rel(prod), "/", `\`)
	}
	if l.root == "/" {
		return p
	}
	// Under a root: the path without its drive ("C:").
	if len(p) >= 2 && p[1] == ':' {
		p = p[2:]
	}
	return winJoin(l.root, strings.TrimLeft(p, `\`))
}

func winJoin(a, b string) string {
	return strings.TrimRight(a, `\/`) + `\` + strings.TrimLeft(b, `\/`)
}
