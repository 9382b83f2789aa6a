package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/buildinfo"
)

func init() { extraCommands = append(extraCommands, newConnectCmd, newDisconnectCmd) }

// connectOptions are connect's flags; a --config file uses the same names.
type connectOptions struct {
	Server          string `yaml:"server"`
	OnboardingToken string `yaml:"onboarding-token"`
	ResourceGroup   string `yaml:"resource-group"`
	CAFile          string `yaml:"ca-file"`
	Name            string `yaml:"name"`
	Tags            string `yaml:"tags"`
	configFile      string
}

func newServiceLogger(a *app) *slog.Logger {
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func newConnectCmd(a *app) *cobra.Command {
	var o connectOptions
	cmd := &cobra.Command{
		Use:   "connect --server URL --onboarding-token T --resource-group RG",
		Short: "Connect this machine to a control plane",
		Long: `connect generates the machine key pair on this machine (the private key
never leaves it; certs/machine.key, himds:himds 0600), registers the machine
with an onboarding credential, writes agentconfig.json and tells a running
HIMDS to pick the new identity up.

Keep the credential out of shell history with --config FILE: a JSON or YAML
file whose keys are the flag names (server, onboarding-token,
resource-group, ca-file, name, tags). Delete the file after use.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.merge(cmd, a); err != nil {
				return err
			}
			return runConnect(cmd.Context(), a, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "control plane URL, https://HOST:PORT")
	f.StringVar(&o.OnboardingToken, "onboarding-token", "", "onboarding credential (prefer --config FILE)")
	f.StringVar(&o.ResourceGroup, "resource-group", "", "resource group the credential is scoped to")
	f.StringVar(&o.CAFile, "ca-file", "", "PEM CA bundle that signs the server certificate (default: system roots)")
	f.StringVar(&o.Name, "name", "", "machine name (default: the host name)")
	f.StringVar(&o.Tags, "tags", "", "tags, k=v,k2=v2")
	f.StringVar(&o.configFile, "config", "", "JSON or YAML file with the flags above (keys = flag names)")
	return cmd
}

// merge fills unset flags from --config and checks the required ones.
func (o *connectOptions) merge(cmd *cobra.Command, a *app) error {
	if o.configFile != "" {
		data, err := os.ReadFile(o.configFile)
		if err != nil {
			return errcode.Wrap(himds.CodeConnectConfig, err, "read --config %s", o.configFile)
		}
		var fromFile connectOptions
		// YAML is a superset of JSON: one decoder reads both.
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&fromFile); err != nil {
			// The decoder's message can quote a value, and this file holds a
			// credential: say where, never what.
			where := "it is not JSON or YAML with the flag names as keys"
			if m := regexp.MustCompile(`line \d+`).FindString(err.Error()); m != "" {
				where += " (" + m + ")"
			}
			return errcode.New(himds.CodeConnectConfig, "parse --config %s: %s", o.configFile, where)
		}
		if fi, err := os.Stat(o.configFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			a.warnf("%s is readable by other users (mode %04o): the credential in it may already be exposed; keep such files 0600", o.configFile, fi.Mode().Perm())
		}
		for _, f := range []struct {
			name     string
			dst      *string
			fromFile string
		}{{"server", &o.Server, fromFile.Server}, {"onboarding-token", &o.OnboardingToken, fromFile.OnboardingToken},
			{"resource-group", &o.ResourceGroup, fromFile.ResourceGroup}, {"ca-file", &o.CAFile, fromFile.CAFile},
			{"name", &o.Name, fromFile.Name}, {"tags", &o.Tags, fromFile.Tags}} {
			if !cmd.Flags().Changed(f.name) && f.fromFile != "" {
				*f.dst = f.fromFile
			}
		}
		a.warnf("%s holds a credential: delete it once the machine is connected (shred -u %s)", o.configFile, o.configFile)
	}
	var missing []string
	for _, r := range []struct{ name, v string }{{"--server", o.Server}, {"--onboarding-token", o.OnboardingToken}, {"--resource-group", o.ResourceGroup}} {
		if r.v == "" {
			missing = append(missing, r.name)
		}
	}
	if len(missing) > 0 {
		return errcode.New(errcode.Usage, "connect needs %s (as flags or in --config FILE)", strings.Join(missing, ", "))
	}
	return nil
}

func parseTags(s string) (apiv1.Tags, error) {
	tags := apiv1.Tags{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, errcode.New(errcode.Usage, "tag %q is not KEY=VALUE", kv)
		}
		tags[k] = v
	}
	return tags, nil
}

func requireRoot(l layout.Layout) error {
	if l.IsSystemRoot() && os.Geteuid() != 0 {
		return errcode.New(errcode.PermissionDenied, "this command changes the agent's state under /var/opt/azcmagent")
	}
	return nil
}

// ensureAgentDirs creates the directories HIMDS uses, with their owners.
func ensureAgentDirs(l layout.Layout) error {
	for _, d := range []struct {
		prod string
		mode os.FileMode
		own  atomicfile.Owner
	}{
		{layout.StateDir, 0o755, atomicfile.Owner{User: layout.UserRoot, Group: layout.GroupRoot}},
		{layout.CertsDir, 0o700, atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS}},
		{layout.TokensDir, 0o710, atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS}},
		{layout.LogDir, 0o750, atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS}},
		{layout.RunDir, 0o750, atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS}},
	} {
		p := l.Path(d.prod)
		if err := os.MkdirAll(p, d.mode); err != nil {
			return errcode.Wrap(errcode.WriteFailed, err, "create %s", p)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return errcode.Wrap(errcode.WriteFailed, err, "set the mode of %s", p)
		}
		if err := atomicfile.Chown(p, d.own); err != nil {
			return errcode.Wrap(errcode.WriteFailed, err, "set the owner of %s", p)
		}
	}
	return nil
}

func inventory() apiv1.Inventory {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	inv := apiv1.Inventory{Hostname: host, OSType: runtime.GOOS, Arch: runtime.GOARCH, AgentVersion: buildinfo.Get().Version, CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		inv.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/sys/class/dmi/id/product_uuid"); err == nil {
		inv.VMID = strings.ToLower(strings.TrimSpace(string(b)))
	}
	return inv
}

func runConnect(ctx context.Context, a *app, o connectOptions) error {
	l := a.layout()
	if err := requireRoot(l); err != nil {
		return err
	}
	if cfg, err := himds.LoadAgentConfig(l); err != nil {
		return err
	} else if cfg != nil {
		return errcode.New(himds.CodeAlreadyConnected, "this machine is already connected as %s to %s", cfg.ResourceID, cfg.Server)
	}
	tags, err := parseTags(o.Tags)
	if err != nil {
		return err
	}
	var caPEM []byte
	if o.CAFile != "" {
		if caPEM, err = os.ReadFile(o.CAFile); err != nil {
			return errcode.Wrap(errcode.Usage, err, "read --ca-file")
		}
	}
	client, err := cloud.New(o.Server, cloud.Options{CAPEM: caPEM, UserAgent: "arcagent/" + buildinfo.Get().Version})
	if err != nil {
		return err
	}
	if err := ensureAgentDirs(l); err != nil {
		return err
	}
	key, err := cloud.GenerateKey()
	if err != nil {
		return err
	}
	keyPEM, err := cloud.MarshalPrivateKey(key)
	if err != nil {
		return err
	}
	himdsOwner := atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS}
	// A key left by a failed connect is replaced: it never registered.
	_ = os.Remove(l.MachineKey())
	if err := atomicfile.WriteFile(l.MachineKey(), keyPEM, atomicfile.WriteOptions{Mode: 0o600, Owner: himdsOwner}); err != nil {
		return errcode.Wrap(errcode.WriteFailed, err, "store the machine key")
	}
	cleanup := func() { _ = os.Remove(l.MachineKey()) }
	inv := inventory()
	reg, err := client.Register(ctx, o.OnboardingToken, key, apiv1.RegisterRequest{Name: o.Name, Inventory: inv, Tags: tags})
	if err != nil {
		cleanup()
		return fmt.Errorf("register with %s: %w", o.Server, err)
	}
	m := client.Machine(reg.MachineID, reg.Audience, key)
	if !strings.EqualFold(reg.ResourceGroup, o.ResourceGroup) && !strings.EqualFold("/subscriptions/"+reg.SubscriptionID+"/resourceGroups/"+reg.ResourceGroup, o.ResourceGroup) {
		if derr := m.Delete(ctx); derr != nil {
			a.warnf("the machine registered into %s and could not be deleted again: %v; delete it with `arcagent fleet machines delete %s`", reg.ResourceGroup, derr, reg.MachineID)
		}
		cleanup()
		return errcode.New(errcode.Usage, "the onboarding credential is for resource group %s, not %s: nothing was connected", reg.ResourceGroup, o.ResourceGroup)
	}
	if len(caPEM) > 0 {
		_ = os.Remove(l.ServerCA())
		if err := atomicfile.WriteFile(l.ServerCA(), caPEM, atomicfile.WriteOptions{Mode: 0o644, Owner: himdsOwner}); err != nil {
			cleanup()
			return errcode.Wrap(errcode.WriteFailed, err, "store the server CA")
		}
	}
	now := time.Now().UTC()
	cfg := &himds.AgentConfig{
		MachineID: reg.MachineID, ResourceID: reg.ResourceID, Name: reg.Name, SubscriptionID: reg.SubscriptionID, ResourceGroup: reg.ResourceGroup,
		TenantID: reg.TenantID, Location: reg.Location, Tags: tags, Server: client.BaseURL(), Audience: reg.Audience, Issuer: reg.Issuer,
		AgentVersion: inv.AgentVersion, Status: himds.StatusConnected, LastHeartbeat: &now, ConnectedAt: now,
		HeartbeatSeconds: reg.HeartbeatSeconds, MachineKeyPath: layout.MachineKey, OSType: himds.OSType(), VMID: inv.VMID,
		ScopeDescription: "/subscriptions/" + reg.SubscriptionID + "/resourceGroups/" + reg.ResourceGroup,
	}
	if len(caPEM) > 0 {
		cfg.ServerCAPath = layout.ServerCA
	}
	if err := himds.WriteAgentConfig(l, cfg); err != nil {
		return err
	}
	notified := tellHIMDS(ctx, l)
	if a.json {
		return a.printJSON(map[string]any{"machineId": reg.MachineID, "resourceId": reg.ResourceID, "name": reg.Name, "server": cfg.Server, "himdsNotified": notified})
	}
	fmt.Fprintf(a.stdout, "Connected %s as %s\n", reg.Name, reg.ResourceID)
	if !notified {
		fmt.Fprintln(a.stdout, "HIMDS is not running: start it (systemctl start himdsd, or arcagent daemon himds) to send heartbeats and serve tokens")
	}
	return nil
}

// tellHIMDS asks a running HIMDS to reload; it reports whether it did.
func tellHIMDS(ctx context.Context, l layout.Layout) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := himds.NewAdminClient(l.AdminSocket()).Reload(ctx)
	return err == nil
}

func newDisconnectCmd(a *app) *cobra.Command {
	var localOnly bool
	cmd := &cobra.Command{
		Use:   "disconnect [--force-local-only]",
		Short: "Delete this machine from the control plane and reset the local state",
		Long: `disconnect deletes the machine resource on the control plane (signed with
the machine key), then removes agentconfig.json, the machine key and the
server CA, and tells a running HIMDS. With --force-local-only it only
resets the local state: use it when the server is gone or the identity
has expired, and delete the resource with "arcagent fleet machines delete".`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDisconnect(cmd.Context(), a, localOnly)
		},
	}
	cmd.Flags().BoolVar(&localOnly, "force-local-only", false, "reset the local state without contacting the control plane")
	return cmd
}

func runDisconnect(ctx context.Context, a *app, localOnly bool) error {
	l := a.layout()
	if err := requireRoot(l); err != nil {
		return err
	}
	cfg, err := himds.LoadAgentConfig(l)
	if err != nil && !localOnly {
		return err
	}
	if cfg == nil && err == nil {
		return errcode.New(himds.CodeNotConnected, "there is nothing to disconnect")
	}
	if !localOnly {
		keyPEM, err := os.ReadFile(l.MachineKey())
		if err != nil {
			return errcode.Wrap(himds.CodeMachineKey, err, "read the machine key (use --force-local-only to reset the local state anyway)")
		}
		key, err := cloud.ParsePrivateKey(keyPEM)
		if err != nil {
			return errcode.Wrap(himds.CodeMachineKey, err, "parse the machine key")
		}
		caPEM, _ := os.ReadFile(l.ServerCA())
		client, err := cloud.New(cfg.Server, cloud.Options{CAPEM: caPEM, UserAgent: "arcagent/" + buildinfo.Get().Version})
		if err != nil {
			return err
		}
		if err := client.Machine(cfg.MachineID, cfg.Audience, key).Delete(ctx); err != nil {
			if cloud.CodeOf(err) == apiv1.CodeMachineExpired {
				return errcode.Wrap(himds.CodeExpired, err, "the server refuses the expired identity: reset this machine with `arcagent disconnect --force-local-only`")
			}
			return fmt.Errorf("delete the machine on %s (to reset only this machine, run `arcagent disconnect --force-local-only`): %w", cfg.Server, err)
		}
	}
	for _, p := range []string{l.AgentConfig(), l.MachineKey(), l.ServerCA(), l.HIMDSStatus()} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errcode.Wrap(errcode.WriteFailed, err, "remove %s", p)
		}
	}
	notified := tellHIMDS(ctx, l)
	if a.json {
		return a.printJSON(map[string]any{"disconnected": true, "localOnly": localOnly, "himdsNotified": notified})
	}
	if cfg != nil {
		fmt.Fprintf(a.stdout, "Disconnected %s\n", cfg.ResourceID)
	} else {
		fmt.Fprintln(a.stdout, "Local state reset")
	}
	if localOnly && cfg != nil {
		fmt.Fprintf(a.stdout, "The resource still exists on %s: delete it with `arcagent fleet machines delete %s`\n", cfg.Server, cfg.MachineID)
	}
	return nil
}
