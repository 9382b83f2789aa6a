// Package onboard connects a machine to a control plane and disconnects it
// again: it generates the machine key pair on the machine (the private key
// never leaves it), registers with an onboarding credential, writes the
// key, the server CA and agentconfig.json through agent/layout, and on any
// failure rolls back what it did (the machine registered on the server is
// deleted again, the files it wrote are removed). Every path, including
// the DMI product UUID it reports, is taken under the layout's root.
package onboard

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/daemon"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/agent/netcheck"
	"github.com/arcagent/arcagent/agent/proxy"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/buildinfo"
	"github.com/arcagent/arcagent/internal/tlskex"
)

// ProductUUID is the production path of the DMI product UUID, reported as
// the machine's vmId.
const ProductUUID = himds.ProductUUID

// Options are what Connect needs.
type Options struct {
	Layout          layout.Layout
	Server          string // https://HOST:PORT
	OnboardingToken string
	ResourceGroup   string // name or /subscriptions/SUB/resourceGroups/NAME the credential must be for
	CAPEM           []byte // CA bundle of the server; empty: system roots
	Name            string // machine name; empty: the server uses the host name
	Tags            apiv1.Tags
	// Warn receives what the user should know but that does not fail the
	// connect (e.g. a rollback that could not delete the machine). Nil
	// discards.
	Warn func(msg string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IgnoreNetworkCheck skips the network check (agent/netcheck) that
	// otherwise runs before anything is written or registered.
	IgnoreNetworkCheck bool
	// CheckTimeout bounds each endpoint of the network check; 0 means the
	// check's default.
	CheckTimeout time.Duration
}

// Result is a completed connect.
type Result struct {
	Config        *himds.AgentConfig
	HIMDSNotified bool // a running HIMDS picked the new identity up
}

// writeConfig writes agentconfig.json; tests swap it to fail the last step.
var writeConfig = himds.WriteAgentConfig

// Connect registers the machine and writes its state. On failure nothing
// is left behind: not the key, not the CA, not the machine on the server.
func Connect(ctx context.Context, o Options) (res *Result, err error) {
	l := o.Layout
	if err := RequireRoot(l); err != nil {
		return nil, err
	}
	if cfg, err := himds.LoadAgentConfig(l); err != nil {
		return nil, err
	} else if cfg != nil {
		return nil, errcode.New(himds.CodeAlreadyConnected, "this machine is already connected as %s to %s", cfg.ResourceID, cfg.Server)
	}
	client, err := newClient(l, o.Server, o.CAPEM)
	if err != nil {
		return nil, err
	}
	if !o.IgnoreNetworkCheck {
		if err := networkCheck(ctx, o); err != nil {
			return nil, err
		}
	}
	if err := EnsureDirs(l); err != nil {
		return nil, err
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	key, err := cloud.GenerateKey()
	if err != nil {
		return nil, err
	}
	keyPEM, err := cloud.MarshalPrivateKey(key)
	if err != nil {
		return nil, err
	}
	himdsOwner := atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS}
	// A key left by a failed connect is replaced: it never registered.
	_ = os.Remove(l.MachineKey())
	if err := atomicfile.WriteFile(l.MachineKey(), keyPEM, atomicfile.WriteOptions{Mode: 0o600, Owner: himdsOwner}); err != nil {
		return nil, errcode.Wrap(errcode.WriteFailed, err, "store the machine key")
	}
	undo = append(undo, func() { _ = os.Remove(l.MachineKey()) })
	inv := Inventory(l)
	reg, err := client.Register(ctx, o.OnboardingToken, key, apiv1.RegisterRequest{Name: o.Name, Inventory: inv, Tags: o.Tags})
	if err != nil {
		return nil, fmt.Errorf("register with %s: %w", o.Server, err)
	}
	m := client.Machine(reg.MachineID, reg.Audience, key)
	undo = append(undo, func() {
		// The caller's context may be what failed: the rollback gets its own.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := m.Delete(dctx); derr != nil {
			o.warn(fmt.Sprintf("the machine registered as %s and could not be deleted again: %v; delete it with `arcagent fleet machines delete %s`", reg.ResourceID, derr, reg.MachineID))
		}
	})
	scope := "/subscriptions/" + reg.SubscriptionID + "/resourceGroups/" + reg.ResourceGroup
	if !strings.EqualFold(reg.ResourceGroup, o.ResourceGroup) && !strings.EqualFold(scope, o.ResourceGroup) {
		return nil, errcode.New(errcode.Usage, "the onboarding credential is for resource group %s, not %s: nothing was connected", reg.ResourceGroup, o.ResourceGroup)
	}
	if len(o.CAPEM) > 0 {
		_ = os.Remove(l.ServerCA())
		if err := atomicfile.WriteFile(l.ServerCA(), o.CAPEM, atomicfile.WriteOptions{Mode: 0o644, Owner: himdsOwner}); err != nil {
			return nil, errcode.Wrap(errcode.WriteFailed, err, "store the server CA")
		}
		undo = append(undo, func() { _ = os.Remove(l.ServerCA()) })
	}
	now := o.now()
	cfg := &himds.AgentConfig{
		MachineID: reg.MachineID, ResourceID: reg.ResourceID, Name: reg.Name, SubscriptionID: reg.SubscriptionID, ResourceGroup: reg.ResourceGroup,
		TenantID: reg.TenantID, Location: reg.Location, Tags: o.Tags, Server: client.BaseURL(), Audience: reg.Audience, Issuer: reg.Issuer,
		AgentVersion: inv.AgentVersion, Status: himds.StatusConnected, LastHeartbeat: &now, ConnectedAt: now,
		HeartbeatSeconds: reg.HeartbeatSeconds, MachineKeyPath: layout.MachineKey, OSType: himds.OSType(), VMID: inv.VMID,
		ScopeDescription: scope,
	}
	if len(o.CAPEM) > 0 {
		cfg.ServerCAPath = layout.ServerCA
	}
	if err := writeConfig(l, cfg); err != nil {
		return nil, err
	}
	return &Result{Config: cfg, HIMDSNotified: TellHIMDS(ctx, l)}, nil
}

// networkCheck runs `arcagent check` for the server connect is about to
// register with. A failure keeps the check's report (*netcheck.Failed) in
// the error chain, for the caller to print.
func networkCheck(ctx context.Context, o Options) error {
	no, err := netcheck.Plan{Layout: o.Layout, Server: o.Server, CAPEM: o.CAPEM}.Options()
	if err != nil {
		return err
	}
	no.Timeout, no.UserAgent = o.CheckTimeout, userAgent()
	if err := netcheck.Run(ctx, no).Err(); err != nil {
		return errcode.Wrap(netcheck.CodeConnectCheck, err, "the network check failed, nothing was connected")
	}
	return nil
}

func (o Options) warn(msg string) {
	if o.Warn != nil {
		o.Warn(msg)
	}
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}

func userAgent() string { return "arcagent/" + buildinfo.Get().Version }

// ParseTags parses "k=v,k2=v2".
func ParseTags(s string) (apiv1.Tags, error) {
	tags := apiv1.Tags{}
	for kv := range strings.SplitSeq(s, ",") {
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

// RequireRoot refuses to change the live system's agent state unless
// running as root.
func RequireRoot(l layout.Layout) error {
	if l.IsSystemRoot() && os.Geteuid() != 0 {
		return errcode.New(errcode.PermissionDenied, "this command changes the agent's state under /var/opt/azcmagent")
	}
	return nil
}

// EnsureDirs creates the directories HIMDS uses, with the owners and modes
// agent/layout declares, through the daemon's own check: a link in place of
// one is refused, never followed, and parents made on the way are 0755.
func EnsureDirs(l layout.Layout) error {
	dirs := append([]daemon.Dir{{Path: l.StateDir(), Owner: atomicfile.Owner{User: layout.UserRoot, Group: layout.GroupRoot}, Mode: 0o755}},
		daemon.HIMDSDirs(l, "")...)
	for i := range dirs {
		dirs[i].Create = true
	}
	if err := daemon.CheckDirs(dirs, nil); err != nil {
		return errcode.Wrap(errcode.WriteFailed, err, "prepare the agent's directories")
	}
	return nil
}

// Inventory describes this machine for registration, as HIMDS reports it
// in heartbeats (himds.CollectInventory).
func Inventory(l layout.Layout) apiv1.Inventory {
	return himds.CollectInventory(l, buildinfo.Get().Version)
}

// TellHIMDS asks a running HIMDS to reload; it reports whether it did.
func TellHIMDS(ctx context.Context, l layout.Layout) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := himds.NewAdminClient(l.AdminSocket()).Reload(ctx)
	return err == nil
}

// DisconnectOptions are what Disconnect needs.
type DisconnectOptions struct {
	Layout layout.Layout
	// LocalOnly resets the local state without contacting the server.
	LocalOnly bool
}

// Disconnected is a completed disconnect. Config is the registration that
// was removed (nil when it could not be read and LocalOnly was set).
type Disconnected struct {
	Config        *himds.AgentConfig
	HIMDSNotified bool
}

// Disconnect deletes the machine on the control plane (signed with the
// machine key) unless LocalOnly, then removes agentconfig.json, the
// machine key, the server CA and the HIMDS status file.
func Disconnect(ctx context.Context, o DisconnectOptions) (*Disconnected, error) {
	l := o.Layout
	if err := RequireRoot(l); err != nil {
		return nil, err
	}
	cfg, err := himds.LoadAgentConfig(l)
	if err != nil && !o.LocalOnly {
		return nil, err
	}
	if cfg == nil && err == nil {
		return nil, errcode.New(himds.CodeNotConnected, "there is nothing to disconnect")
	}
	if !o.LocalOnly {
		if err := deleteOnServer(ctx, l, cfg); err != nil {
			return nil, err
		}
	}
	for _, p := range []string{l.AgentConfig(), l.MachineKey(), l.ServerCA(), l.HIMDSStatus()} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, errcode.Wrap(errcode.WriteFailed, err, "remove %s", p)
		}
	}
	return &Disconnected{Config: cfg, HIMDSNotified: TellHIMDS(ctx, l)}, nil
}

func deleteOnServer(ctx context.Context, l layout.Layout, cfg *himds.AgentConfig) error {
	key, err := himds.LoadMachineKey(l)
	if err != nil {
		return fmt.Errorf("%w (use --force-local-only to reset the local state anyway)", err)
	}
	caPEM, _ := os.ReadFile(l.ServerCA())
	client, err := newClient(l, cfg.Server, caPEM)
	if err != nil {
		return err
	}
	if err := client.Machine(cfg.MachineID, cfg.Audience, key).Delete(ctx); err != nil {
		if cloud.CodeOf(err) == apiv1.CodeMachineExpired {
			return errcode.Wrap(himds.CodeExpired, err, "the server refuses the expired identity: reset this machine with `arcagent disconnect --force-local-only`")
		}
		return fmt.Errorf("delete the machine on %s (to reset only this machine, run `arcagent disconnect --force-local-only`): %w", cfg.Server, err)
	}
	return nil
}

// newClient is the control plane client of connect and disconnect: routed
// like the services' traffic (agent/proxy: through the arc proxy when it
// is on, else direct or HTTPS_PROXY, honouring proxy.bypass), trusting
// caPEM (empty: the system roots).
func newClient(l layout.Layout, server string, caPEM []byte) (*cloud.Client, error) {
	settings, _, err := config.NewStore(l).Load()
	if err != nil {
		return nil, err
	}
	tr, err := proxy.Transport(l, settings, server)
	if err != nil {
		return nil, err
	}
	tr.TLSClientConfig.RootCAs = nil
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errcode.New(errcode.Usage, "the CA bundle holds no PEM certificate")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return cloud.New(server, cloud.Options{HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: tlskex.Wrap(tr)}, UserAgent: userAgent()})
}

// File is a connect --config file: JSON or YAML whose keys are connect's
// flag names. It keeps the credential out of shell history.
type File struct {
	Server          string `yaml:"server"`
	OnboardingToken string `yaml:"onboarding-token"`
	ResourceGroup   string `yaml:"resource-group"`
	CAFile          string `yaml:"ca-file"`
	Name            string `yaml:"name"`
	Tags            string `yaml:"tags"`
}

var lineRE = regexp.MustCompile(`line \d+`)

// ParseFile parses a --config file. The file holds a credential, so an
// error says where the file is wrong, never what it holds.
func ParseFile(data []byte) (File, error) {
	var f File
	// YAML is a superset of JSON: one decoder reads both.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		where := "it is not JSON or YAML with the flag names as keys"
		if m := lineRE.FindString(err.Error()); m != "" {
			where += " (" + m + ")"
		}
		return File{}, errcode.New(himds.CodeConnectConfig, "%s", where)
	}
	return f, nil
}
