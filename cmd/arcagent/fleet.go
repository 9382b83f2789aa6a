package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/cli"
	"github.com/arcagent/arcagent/internal/table"
)

func init() { extraCommands = append(extraCommands, newFleetCmd) }

// fleetCommands are the subcommands of `arcagent fleet`. Other files add
// theirs from init (e.g. `fleet currency`), so adding one touches only its
// own file.
var fleetCommands []func(*app) *cobra.Command

func init() {
	fleetCommands = append(fleetCommands, newFleetLoginCmd, newFleetLogoutCmd, newFleetWhoamiCmd, newFleetSubscriptionsCmd,
		newFleetGroupsCmd, newFleetRolesCmd, newFleetTokensCmd, newFleetOnboardingCmd, newFleetMachinesCmd)
}

func newFleetCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Operate a control plane (arcserver): scopes, roles, onboarding, machines, packages, extensions",
		Long: `fleet talks to an arcserver control plane as an operator. Log in once with an
API token; the login is kept (mode 0600) in ` + "`$XDG_CONFIG_HOME/arcagent/fleet.json`" + `
(~/.config/arcagent/fleet.json; ARCAGENT_FLEET_CONFIG overrides the path).

  arcagent fleet login --server https://cp.example:8443 --ca-file ca.crt --token -
  arcagent fleet subscriptions create prod
  arcagent fleet groups create web --subscription prod
  arcagent fleet onboarding create --resource-group web --expires 1h --uses 5
  arcagent fleet packages publish Contoso.Monitoring.StatusReporter-1.0.0.zip
  arcagent fleet extensions set --machine web01 --name monitor --publisher Contoso.Monitoring --type StatusReporter --version 1.0.0`,
	}
	for _, add := range fleetCommands {
		cmd.AddCommand(add(a))
	}
	return cmd
}

func fleetClient(l cloud.Login) (*cloud.Client, error) {
	return cloud.New(l.Server, cloud.Options{CAPEM: []byte(l.CAPEM), UserAgent: "arcagent-fleet"})
}

// fleetOperator returns the logged-in operator client.
func (a *app) fleetOperator() (*cloud.Operator, cloud.Login, error) {
	l, err := cloud.LoadLogin()
	if err != nil {
		return nil, l, err
	}
	c, err := fleetClient(l)
	if err != nil {
		return nil, l, err
	}
	return c.Operator(l.Token), l, nil
}

// printTable prints rows in the one table style of every command, fitted
// to the terminal's width: the column named wrap ("" the widest) wraps.
func (a *app) printTable(header []string, rows [][]string, wrap string) error {
	return table.Render(a.stdout, header, rows, table.Options{Width: table.Width(a.stdout), Wrap: wrap})
}

// printPairs prints KEY value lines (one resource's fields) in the same
// style, empty values kept.
func (a *app) printPairs(rows [][]string) error {
	return table.Render(a.stdout, nil, rows, table.Options{Width: table.Width(a.stdout), NoHeader: true, KeepEmpty: true})
}

func fleetTags(kv []string) (apiv1.Tags, error) {
	if len(kv) == 0 {
		return nil, nil
	}
	t := apiv1.Tags{}
	for _, s := range kv {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, errcode.New(errcode.Usage, "--tag %q must be KEY=VALUE", s)
		}
		t[k] = v
	}
	return t, nil
}

func fmtTags(t apiv1.Tags) string {
	var parts []string
	for k, v := range t {
		parts = append(parts, k+"="+v)
	}
	if len(parts) == 0 {
		return "-"
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// fmtTime is the one timestamp format of human output: RFC 3339, UTC.
func fmtTime(t time.Time) string { return cli.Time(t) }

func newFleetLoginCmd(a *app) *cobra.Command {
	var server, token, caFile string
	cmd := &cobra.Command{
		Use:   "login --server URL --token TOKEN [--ca-file CA.pem]",
		Short: "Check an API token against a control plane and remember the login",
		Long: `login verifies the token with the server (GET /v1/whoami) and stores server,
token and CA in your config directory with mode 0600. Use --token - to read
the token from stdin, which keeps it out of your shell history.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" || token == "" {
				return errcode.New(errcode.Usage, "--server and --token are required")
			}
			if token == "-" {
				line, err := bufio.NewReader(a.stdin).ReadString('\n')
				if err != nil && line == "" {
					return errcode.Wrap(errcode.Usage, err, "read the token from stdin")
				}
				token = strings.TrimSpace(line)
			}
			l := cloud.Login{Server: strings.TrimRight(server, "/"), Token: strings.TrimSpace(token)}
			if caFile != "" {
				b, err := os.ReadFile(caFile)
				if err != nil {
					return errcode.Wrap(errcode.Usage, err, "read --ca-file")
				}
				l.CAPEM = string(b)
			}
			c, err := fleetClient(l)
			if err != nil {
				return err
			}
			who, err := c.Operator(l.Token).Whoami(cmd.Context())
			if err != nil {
				return err
			}
			l.Principal, l.TenantID, l.LoggedIn = who.Principal, who.TenantID, time.Now().UTC()
			p, err := cloud.SaveLogin(l)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"server": l.Server, "principal": l.Principal, "tenantId": l.TenantID, "config": p})
			}
			fmt.Fprintf(a.stdout, "Logged in to %s as %s (tenant %s); login saved in %s\n", l.Server, l.Principal, l.TenantID, p)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "control plane URL, https://HOST:PORT")
	f.StringVar(&token, "token", "", "API token, or - to read it from stdin")
	f.StringVar(&caFile, "ca-file", "", "PEM CA that signs the server certificate (arcserver's DATA/ca.crt)")
	return cmd
}

func newFleetLogoutCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the stored login",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := cloud.LoginPath()
			if err != nil {
				return err
			}
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return errcode.Wrap(errcode.WriteFailed, err, "remove %s", p)
			}
			if !a.json {
				fmt.Fprintf(a.stdout, "Logged out (%s removed)\n", p)
			}
			return nil
		},
	}
}

func newFleetWhoamiCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the logged-in principal and its role assignments",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, l, err := a.fleetOperator()
			if err != nil {
				return err
			}
			who, err := op.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(who)
			}
			fmt.Fprintf(a.stdout, "%s on %s (tenant %s)\n", who.Principal, l.Server, who.TenantID)
			var rows [][]string
			for _, r := range who.Assignments {
				rows = append(rows, []string{r.Role, r.Scope})
			}
			return a.printTable([]string{"ROLE", "SCOPE"}, rows, "")
		},
	}
}

func newFleetSubscriptionsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "subscriptions", Aliases: []string{"subscription", "subs"}, Short: "Create and list subscriptions"}
	var tags []string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a subscription (needs Owner at /)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			t, err := fleetTags(tags)
			if err != nil {
				return err
			}
			s, err := op.CreateSubscription(cmd.Context(), apiv1.CreateSubscriptionRequest{DisplayName: args[0], Tags: t})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(s)
			}
			fmt.Fprintf(a.stdout, "Created subscription %s (%s)\n", s.DisplayName, s.SubID)
			return nil
		},
	}
	create.Flags().StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the subscriptions you can see",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			subs, err := op.ListSubscriptions(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(subs)
			}
			var rows [][]string
			for _, s := range subs {
				rows = append(rows, []string{s.DisplayName, s.SubID, fmtTags(s.Tags), fmtTime(s.CreatedAt)})
			}
			return a.printTable([]string{"NAME", "SUBSCRIPTION ID", "TAGS", "CREATED"}, rows, "")
		},
	}
	cmd.AddCommand(create, list)
	return cmd
}

func newFleetGroupsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "groups", Aliases: []string{"group", "resource-groups"}, Short: "Create and list resource groups"}
	var sub, location string
	var tags []string
	create := &cobra.Command{
		Use:   "create NAME --subscription SUB",
		Short: "Create a resource group in a subscription",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			id, err := op.ResolveSubscription(cmd.Context(), sub)
			if err != nil {
				return err
			}
			t, err := fleetTags(tags)
			if err != nil {
				return err
			}
			g, err := op.CreateResourceGroup(cmd.Context(), id, apiv1.CreateResourceGroupRequest{Name: args[0], Location: location, Tags: t})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(g)
			}
			fmt.Fprintf(a.stdout, "Created resource group %s\n", g.ID)
			return nil
		},
	}
	create.Flags().StringVar(&sub, "subscription", "", "subscription name or id (required)")
	create.Flags().StringVar(&location, "location", "", "location label (default \"local\")")
	create.Flags().StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	var lsub string
	list := &cobra.Command{
		Use:   "list --subscription SUB",
		Short: "List the resource groups of a subscription",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			id, err := op.ResolveSubscription(cmd.Context(), lsub)
			if err != nil {
				return err
			}
			gs, err := op.ListResourceGroups(cmd.Context(), id)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(gs)
			}
			var rows [][]string
			for _, g := range gs {
				rows = append(rows, []string{g.Name, g.Location, fmtTags(g.Tags), g.ID})
			}
			return a.printTable([]string{"NAME", "LOCATION", "TAGS", "SCOPE"}, rows, "")
		},
	}
	list.Flags().StringVar(&lsub, "subscription", "", "subscription name or id (required)")
	cmd.AddCommand(create, list)
	return cmd
}

func newFleetRolesCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "roles", Aliases: []string{"role"}, Short: "Assign, list and remove roles"}
	var principal, role, scope string
	assign := &cobra.Command{
		Use:   "assign --principal P --role ROLE --scope SCOPE",
		Short: "Grant a role to a principal at a scope (and everything below it)",
		Long: `assign grants ROLE to principal P at SCOPE. SCOPE is "/" (the tenant),
/subscriptions/SUB, /subscriptions/SUB/resourceGroups/RG, a machine's resource
id, or the short forms SUBNAME and SUBNAME/RG. Roles: Owner, Reader,
"Connected Machine Onboarding", "Connected Machine Resource Administrator".`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if principal == "" || role == "" || scope == "" {
				return errcode.New(errcode.Usage, "--principal, --role and --scope are required")
			}
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			sc, err := op.ResolveScope(cmd.Context(), scope)
			if err != nil {
				return err
			}
			ra, err := op.AssignRole(cmd.Context(), apiv1.CreateRoleAssignmentRequest{Principal: principal, Role: role, Scope: sc})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(ra)
			}
			fmt.Fprintf(a.stdout, "Assigned %s to %s at %s (assignment %s)\n", ra.Role, ra.Principal, ra.Scope, ra.ID)
			return nil
		},
	}
	assign.Flags().StringVar(&principal, "principal", "", "principal (the name API tokens are issued to)")
	assign.Flags().StringVar(&role, "role", "", "role name")
	assign.Flags().StringVar(&scope, "scope", "", "scope")
	var lscope string
	list := &cobra.Command{
		Use:   "list [--scope SCOPE]",
		Short: "List role assignments (those affecting SCOPE, if given)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			sc := ""
			if lscope != "" {
				if sc, err = op.ResolveScope(cmd.Context(), lscope); err != nil {
					return err
				}
			}
			ras, err := op.ListRoleAssignments(cmd.Context(), sc)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(ras)
			}
			var rows [][]string
			for _, r := range ras {
				rows = append(rows, []string{r.Principal, r.Role, r.Scope, r.ID})
			}
			return a.printTable([]string{"PRINCIPAL", "ROLE", "SCOPE", "ID"}, rows, "")
		},
	}
	list.Flags().StringVar(&lscope, "scope", "", "only assignments at, above or below this scope")
	remove := &cobra.Command{
		Use:   "remove ASSIGNMENT-ID",
		Short: "Remove a role assignment",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			if err := op.DeleteRoleAssignment(cmd.Context(), args[0]); err != nil {
				return err
			}
			if !a.json {
				fmt.Fprintf(a.stdout, "Removed role assignment %s\n", args[0])
			}
			return nil
		},
	}
	defs := &cobra.Command{
		Use:   "definitions",
		Short: "List the built-in roles and their permissions",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			rs, err := op.RoleDefinitions(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(rs)
			}
			var rows [][]string
			for _, r := range rs {
				rows = append(rows, []string{r.Name, strings.Join(r.Actions, " "), r.Description})
			}
			return a.printTable([]string{"ROLE", "PERMISSIONS", "DESCRIPTION"}, rows, "")
		},
	}
	cmd.AddCommand(assign, list, remove, defs)
	return cmd
}

func newFleetTokensCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Aliases: []string{"token"}, Short: "Create, list and revoke API tokens"}
	var principal, expires, desc string
	create := &cobra.Command{
		Use:   "create --principal P [--expires 90d]",
		Short: "Create an API token for a principal (needs Owner at /); it is shown once",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if principal == "" {
				return errcode.New(errcode.Usage, "--principal is required")
			}
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			t, err := op.CreateAPIToken(cmd.Context(), apiv1.CreateAPITokenRequest{Principal: principal, ExpiresIn: expires, Description: desc})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(t)
			}
			fmt.Fprintf(a.stdout, "API token %s for %s, expires %s (shown once):\n\n  %s\n\nGrant it roles with `arcagent fleet roles assign --principal %s ...`.\n", t.ID, t.Principal, fmtTime(*t.ExpiresAt), t.Token, t.Principal)
			return nil
		},
	}
	create.Flags().StringVar(&principal, "principal", "", "principal the token acts as")
	create.Flags().StringVar(&expires, "expires", "", "lifetime, e.g. 720h or 30d (default 90d)")
	create.Flags().StringVar(&desc, "description", "", "what the token is for")
	list := &cobra.Command{
		Use:   "list",
		Short: "List API tokens (never their secrets)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			ts, err := op.ListAPITokens(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(ts)
			}
			var rows [][]string
			for _, t := range ts {
				exp := "never"
				if t.ExpiresAt != nil {
					exp = fmtTime(*t.ExpiresAt)
				}
				rows = append(rows, []string{t.ID, t.Principal, fmtTime(t.CreatedAt), exp, t.Description})
			}
			return a.printTable([]string{"ID", "PRINCIPAL", "CREATED", "EXPIRES", "DESCRIPTION"}, rows, "")
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API token; it stops working at once",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			if err := op.RevokeAPIToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			if !a.json {
				fmt.Fprintf(a.stdout, "Revoked API token %s\n", args[0])
			}
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newFleetOnboardingCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "onboarding", Short: "Create, list and revoke onboarding credentials"}
	var sub, rg, expires, desc string
	var uses int
	create := &cobra.Command{
		Use:   "create --resource-group RG [--subscription SUB] --expires 1h --uses N",
		Short: "Create an onboarding credential for a resource group; the secret is shown once",
		Long: `create makes a credential that lets up to --uses machines register into the
resource group until --expires (at most 30 days). The server keeps only its
hash. --resource-group is a name (with --subscription when the name is not
unique) or /subscriptions/SUB/resourceGroups/RG.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if expires == "" || uses == 0 {
				return errcode.New(errcode.Usage, "--expires and --uses are required (e.g. --expires 1h --uses 1)")
			}
			op, l, err := a.fleetOperator()
			if err != nil {
				return err
			}
			sid, name, err := op.ResolveGroup(cmd.Context(), sub, rg)
			if err != nil {
				return err
			}
			c, err := op.CreateOnboarding(cmd.Context(), apiv1.CreateOnboardingRequest{SubscriptionID: sid, ResourceGroup: name, ExpiresIn: expires, Uses: uses, Description: desc})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(c)
			}
			fmt.Fprintf(a.stdout, "Onboarding credential %s for %s\n  expires %s, %d use(s)\n\nSecret (shown once):\n\n  %s\n\nOn the machine, register with the control plane %s using this secret.\n",
				c.ID, c.Scope, fmtTime(c.ExpiresAt), c.UsesTotal, c.Secret, l.Server)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&rg, "resource-group", "", "resource group name or scope (required)")
	f.StringVar(&sub, "subscription", "", "subscription name or id")
	f.StringVar(&expires, "expires", "", "lifetime, e.g. 30m, 1h, 7d (at most 30d)")
	f.IntVar(&uses, "uses", 0, "how many machines may register with it (1..10000)")
	f.StringVar(&desc, "description", "", "what the credential is for")
	var lsub, lrg string
	list := &cobra.Command{
		Use:   "list [--subscription SUB] [--resource-group RG]",
		Short: "List onboarding credentials (never their secrets)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			sid, name, err := op.ResolveListScope(cmd.Context(), lsub, lrg)
			if err != nil {
				return err
			}
			cs, err := op.ListOnboarding(cmd.Context(), sid, name)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(cs)
			}
			var rows [][]string
			for _, c := range cs {
				rows = append(rows, []string{c.ID, c.State, fmt.Sprintf("%d/%d", c.UsesLeft, c.UsesTotal), fmtTime(c.ExpiresAt), c.Scope, c.CreatedBy})
			}
			return a.printTable([]string{"ID", "STATE", "USES LEFT", "EXPIRES", "SCOPE", "CREATED BY"}, rows, "")
		},
	}
	list.Flags().StringVar(&lsub, "subscription", "", "subscription name or id")
	list.Flags().StringVar(&lrg, "resource-group", "", "resource group name or scope")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an onboarding credential; machines already registered stay",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			c, err := op.RevokeOnboarding(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(c)
			}
			fmt.Fprintf(a.stdout, "Revoked onboarding credential %s\n", c.ID)
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newFleetMachinesCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "machines", Aliases: []string{"machine"}, Short: "List, show and delete machines"}
	var sub, rg string
	list := &cobra.Command{
		Use:   "list [--subscription SUB] [--resource-group RG]",
		Short: "List machines with their status (Connected, Disconnected, Expired)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			sid, name, err := op.ResolveListScope(cmd.Context(), sub, rg)
			if err != nil {
				return err
			}
			ms, err := op.ListMachines(cmd.Context(), sid, name)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(ms)
			}
			var rows [][]string
			for _, m := range ms {
				rows = append(rows, []string{m.Name, m.Status, fmtTime(m.LastHeartbeat), m.AgentVersion, m.ResourceGroup, m.ID})
			}
			return a.printTable([]string{"NAME", "STATUS", "LAST HEARTBEAT", "AGENT", "RESOURCE GROUP", "ID"}, rows, "")
		},
	}
	list.Flags().StringVar(&sub, "subscription", "", "subscription name or id")
	list.Flags().StringVar(&rg, "resource-group", "", "resource group name or scope")
	show := &cobra.Command{
		Use:   "show ID|NAME|RESOURCE-ID",
		Short: "Show one machine: inventory, status, tags, reported status",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			m, err := op.ResolveMachine(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(m)
			}
			rows := [][]string{
				{"Name", m.Name}, {"Id", m.ID}, {"Resource id", m.ResourceID}, {"Status", m.Status},
				{"Last heartbeat", fmtTime(m.LastHeartbeat)}, {"Agent version", m.AgentVersion},
				{"Host name", m.Inventory.Hostname}, {"OS", strings.TrimSpace(m.Inventory.OSType + " " + m.Inventory.OSName + " " + m.Inventory.OSVersion)},
				{"Tags", fmtTags(m.Tags)}, {"Key thumbprint", m.KeyThumbprint}, {"Registered", fmtTime(m.CreatedAt)},
				{"Desired state ETag", m.DesiredStateTag},
			}
			if m.ReportedStatus != nil {
				rows = append(rows, []string{"Status reported", fmtTime(m.ReportedStatus.ReportedAt)},
					[]string{"Extensions reported", fmt.Sprint(len(m.ReportedStatus.Extensions))})
			}
			for _, r := range rows {
				r[0] += ":"
			}
			return a.printPairs(rows)
		},
	}
	var yes bool
	del := &cobra.Command{
		Use:   "delete ID|NAME|RESOURCE-ID [--yes]",
		Short: "Delete a machine; its assertions stop working at once",
		Long: `delete removes the machine resource; the machine's key is refused from then
on. It asks for confirmation on a terminal; without one (a script, a pipe)
it refuses unless --yes is given.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			id, what := args[0], args[0]
			if !cloud.IsID(id) {
				m, err := op.ResolveMachine(cmd.Context(), id)
				if err != nil {
					return err
				}
				id, what = m.ID, m.Name+" ("+m.ID+")"
			}
			if err := a.confirm(cmd, yes, "Delete machine "+what+"? Its identity stops working at once."); err != nil {
				return err
			}
			if err := op.DeleteMachine(cmd.Context(), id); err != nil {
				return err
			}
			if !a.json {
				fmt.Fprintf(a.stdout, "Deleted machine %s\n", id)
			}
			return nil
		},
	}
	del.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	cmd.AddCommand(list, show, del)
	return cmd
}

// confirm asks question on the terminal unless yes; it fails when the
// answer is not yes or there is no terminal to ask.
func (a *app) confirm(cmd *cobra.Command, yes bool, question string) error {
	if yes {
		return nil
	}
	ok, err := cli.Confirm(a.stdin, a.stderr, question)
	if errors.Is(err, cli.ErrNotTerminal) {
		return errcode.New(errcode.Usage, "%s asks for confirmation and standard input is not a terminal: pass --yes to go ahead without asking", cmd.CommandPath())
	}
	if err != nil || !ok {
		return errcode.New(errcode.Usage, "not confirmed: nothing was changed")
	}
	return nil
}
