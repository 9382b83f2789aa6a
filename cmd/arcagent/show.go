package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/extd"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/cli"
)

func init() { extraCommands = append(extraCommands, newShowCmd) }

// showProps maps show's property names to their values.
func showProps(in himds.Info) map[string]string {
	hb := ""
	if in.LastHeartbeat != nil {
		hb = cli.Time(*in.LastHeartbeat)
	}
	var svc []string
	for _, s := range in.Services {
		svc = append(svc, s.Name+": "+s.State)
	}
	var exts []string
	for _, e := range in.Extensions {
		x := e.Name + " " + e.Version + " " + e.State
		if e.Degraded != "" {
			x += " (degraded: " + e.Degraded + ")"
		}
		exts = append(exts, x)
	}
	var tags []string
	for k, v := range in.Tags {
		tags = append(tags, k+"="+v)
	}
	slices.Sort(tags)
	return map[string]string{
		"name": in.Name, "machineId": in.MachineID, "resourceId": in.ResourceID, "scope": in.Scope,
		"subscriptionId": in.SubscriptionID, "resourceGroup": in.ResourceGroup, "tenantId": in.TenantID, "location": in.Location,
		"server": in.Server, "agentVersion": in.AgentVersion, "status": in.Status, "lastHeartbeat": hb, "lastError": in.LastError,
		"services": strings.Join(svc, ", "), "extensions": strings.Join(exts, ", "), "proxyUrl": in.ProxyURL, "proxyBypass": strings.Join(in.ProxyBypass, ","),
		"tags": strings.Join(tags, ","), "source": in.Source,
	}
}

var showOrder = []string{"name", "resourceId", "machineId", "scope", "location", "tenantId", "server", "agentVersion", "status",
	"lastHeartbeat", "lastError", "services", "extensions", "proxyUrl", "proxyBypass", "tags", "source"}

func newShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show [-j] [PROPERTY…]",
		Short: "Show the machine's connection, status, services and proxy settings",
		Long: `show asks the running HIMDS over its admin socket (root or group himds) and
falls back to the files when it does not answer. It needs no root.

Properties: ` + strings.Join(showOrder, ", ") + `.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runShow(cmd.Context(), a, args)
		},
	}
}

func runShow(ctx context.Context, a *app, props []string) error {
	l := a.layout()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	in, err := himds.NewAdminClient(l.AdminSocket()).Info(cctx)
	cancel()
	if err != nil {
		a.log.Debug("HIMDS did not answer; reading the files", "err", err)
		in, err = himds.InfoFromFiles(l, time.Now())
		if err != nil {
			return err
		}
	}
	addExtensionManager(&in, l)
	all := showProps(in)
	canon := map[string]string{}
	for k := range all {
		canon[strings.ToLower(k)] = k
	}
	var keys []string
	for _, p := range props {
		k, ok := canon[strings.ToLower(p)]
		if !ok {
			return errcode.New(errcode.Usage, "unknown property %q; known: %s", p, strings.Join(showOrder, ", "))
		}
		keys = append(keys, k)
	}
	if a.json {
		if len(keys) == 0 {
			return a.printJSON(in)
		}
		out := map[string]string{}
		for _, k := range keys {
			out[k] = all[k]
		}
		return a.printJSON(out)
	}
	if len(keys) == 1 {
		fmt.Fprintln(a.stdout, all[keys[0]])
		return nil
	}
	if len(keys) == 0 {
		keys = showOrder
	}
	rows := make([][]string, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, []string{k, all[k]})
	}
	if err := a.printPairs(rows); err != nil {
		return err
	}
	if in.Remedy != "" && len(props) == 0 {
		fmt.Fprintf(a.stdout, "\n%s\n", in.Remedy)
	}
	return nil
}

// addExtensionManager fills in the extension manager's service state and
// extensions from its files (root only: unknown otherwise).
func addExtensionManager(in *himds.Info, l layout.Layout) {
	state := ""
	switch s, err := extd.ReadServiceStatus(l); {
	case err == nil:
		state = s.State
		if s.Message != "" {
			state += " (" + s.Message + ")"
		}
	case errors.Is(err, fs.ErrPermission):
		state = "unknown (its state is readable by root only)"
	}
	for i := range in.Services {
		if in.Services[i].Name == "extd" && state != "" {
			in.Services[i].State = state
		}
	}
	rows, err := extd.List(extd.New(extd.Options{Layout: l}))
	if err != nil {
		return
	}
	for _, r := range rows {
		in.Extensions = append(in.Extensions, himds.ExtensionState{Name: r.Name, Version: r.Version, State: r.State, Message: r.Message, Degraded: r.Degraded})
	}
}
