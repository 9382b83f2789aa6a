package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
)

// NotOnWindows starts the reason of every section the audit does not
// evaluate on Windows yet: the rules that read it are not applicable with
// that reason, never a guess and never a pass.
const NotOnWindows = "not evaluated on Windows yet"

// Reasons of the sections a Windows audit does not collect.
const (
	windowsHostReason       = NotOnWindows + ": group himds and its members are Linux accounts; on Windows an ACL decides who may obtain tokens, and ACLs are not read"
	windowsServicesReason   = NotOnWindows + ": the agent's Windows services, their accounts and listeners are not read"
	windowsFilesReason      = NotOnWindows + ": owners and ACLs of the agent's files are not read (Windows has no owner:group and mode)"
	windowsExtensionsReason = NotOnWindows + ": the extensions under %SystemDrive%\\Packages\\Plugins are not read"
	windowsSecretsReason    = NotOnWindows + ": the places onboarding secrets are left on Windows are not scanned"
	windowsAgentReason      = NotOnWindows + ": the installed Windows agent (version, registration) is not read"
	windowsHostConfigReason = "the host profile checks a Linux host (the built-in Linux baseline): not applicable on Windows"
)

// collectWindows is Collect on Windows: the configuration of the Windows
// layout (%ProgramData%\AzureConnectedMachineAgent\Config\localconfig.json)
// or a planned file; every section that needs owners, ACLs, services or
// Linux accounts says it is not evaluated on Windows yet.
func collectWindows(ctx context.Context, opts Options) (*Facts, error) {
	if opts.Root != "" && opts.Root != "/" {
		return nil, errcode.Unsupported("auditing a tree (--root " + opts.Root + ")")
	}
	c := &collector{opts: opts, l: layout.New(""), facts: &Facts{Errors: []CollectorError{}}}
	f := c.facts
	f.Target = TargetFacts{Kind: "host", Root: "/", Live: true, OS: "windows"}
	f.Options = OptionsFacts{Strict: opts.Strict}
	name, _ := os.Hostname()
	f.Host = HostFacts{Section: Section{Reason: windowsHostReason}, Name: name, OS: windowsVersion(), HimdsMembers: []string{}}
	f.HostConfig = HostConfigFacts{Section: Section{Reason: windowsHostConfigReason}, Results: []HostConfigResult{}}
	if opts.PlannedConfig != "" {
		if _, err := os.Stat(opts.PlannedConfig); err != nil {
			return nil, &TargetError{What: "--config " + opts.PlannedConfig, Err: err}
		}
		f.Target.Kind = "planned"
		f.Target.Planned = opts.PlannedConfig
		f.Target.Live = false
		base := filepath.Base(opts.PlannedConfig)
		f.Host = HostFacts{Section: Section{Available: true}, Name: strings.TrimSuffix(base, filepath.Ext(base)), OS: f.Host.OS, HimdsMembers: []string{}}
		if opts.HostName != "" {
			f.Host.Name = opts.HostName
		}
		if err := c.collectConfig(opts.PlannedConfig, "planned"); err != nil {
			return nil, err
		}
		why := "a planned configuration is audited: only configuration rules apply"
		f.Agent.Reason = why
		c.unavailable(ctx, why)
		return f, nil
	}
	if opts.HostName != "" {
		f.Host.Name = opts.HostName
	}
	if err := c.collectConfig(c.l.LocalConfig(), "file"); err != nil {
		return nil, err
	}
	f.Agent = AgentFacts{Section: Section{Reason: windowsAgentReason}}
	f.Services = ServicesFacts{Section: Section{Reason: windowsServicesReason}, ProcReason: windowsServicesReason, Units: map[string]UnitFacts{}, Processes: map[string][]Process{}, Listeners: map[string][]Listener{}, Expected: expectedServices(), ProxyProbes: []ProxyProbe{}}
	f.Files = FilesFacts{Section: Section{Reason: windowsFilesReason}, Entries: []FileFact{}}
	f.Extensions = ExtensionsFacts{Section: Section{Reason: windowsExtensionsReason}, Installed: []ExtensionFact{}}
	f.Secrets = SecretsFacts{Section: Section{Reason: windowsSecretsReason}, Found: []SecretFact{}, Places: []string{}}
	c.collectOptional(ctx)
	return f, nil
}

// windowsLocation is where a finding about a production path points on
// Windows: the path's Windows place when it has one.
func windowsLocation(rel string) string {
	if p, ok := layout.WindowsEnvFromOS().WindowsPath("/" + rel); ok {
		return p
	}
	return rel
}
