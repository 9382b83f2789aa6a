package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/netcheck"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/buildinfo"
)

func init() { extraCommands = append(extraCommands, newCheckCmd) }

type checkFlags struct {
	server, caFile string
	endpoints      []string
	timeout        time.Duration
}

func newCheckCmd(a *app) *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check [--server URL [--ca-file FILE]] [--endpoint URL]… [-j]",
		Short: "Check that this machine reaches the endpoints the agent needs",
		Long: `check tries every endpoint the agent needs — the control plane API, the
token issuer, the package repository and each --endpoint — one step at a
time: DNS, TCP, the TLS handshake (the chain verified against the server CA,
with the protocol and the days left to the certificate's expiry) and one
HTTP request. With a proxy (proxy.url, else HTTPS_PROXY) the proxy is a step
of its own (reachable, CONNECT allowed) and resolves the names itself.

Before connect, name the control plane with --server URL (and --ca-file
FILE for its CA); after connect, check reads agentconfig.json.

Exit status: 0 every endpoint is reachable, 1 one is not, 2 bad usage.`,
		Example: `  arcagent check --server https://arc.example:8443 --ca-file ca.pem
  sudo arcagent check -j`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := runCheck(cmd.Context(), a, f)
			if err != nil {
				return err
			}
			if err := a.printCheck(rep); err != nil {
				return err
			}
			return rep.Err()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "control plane URL, https://HOST:PORT (default: the connected one, from agentconfig.json)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM CA bundle that signs the server certificate (default: the server CA stored by connect, else the system roots)")
	fl.StringArrayVar(&f.endpoints, "endpoint", nil, "a further endpoint to check (an extension endpoint), https://HOST[:PORT][/PATH]; repeatable")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "time allowed for each endpoint")
	return cmd
}

// runCheck turns the flags into a plan and runs it.
func runCheck(ctx context.Context, a *app, f checkFlags) (netcheck.Report, error) {
	if f.caFile != "" && f.server == "" {
		return netcheck.Report{}, errcode.New(errcode.Usage, "--ca-file goes with --server (after connect, check uses the stored server CA)")
	}
	if f.timeout <= 0 {
		return netcheck.Report{}, errcode.New(errcode.Usage, "--timeout must be positive")
	}
	p := netcheck.Plan{Layout: a.layout(), Server: f.server, Extra: f.endpoints}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return netcheck.Report{}, errcode.Wrap(errcode.Usage, err, "read --ca-file")
		}
		p.CAPEM = pem
	}
	o, err := p.Options()
	if err != nil {
		return netcheck.Report{}, err
	}
	o.Timeout, o.UserAgent = f.timeout, "arcagent/"+buildinfo.Get().Version
	return netcheck.Run(ctx, o), nil
}

// printCheck prints the report as a table, or JSON with -j.
func (a *app) printCheck(rep netcheck.Report) error {
	if a.json {
		return a.printJSON(rep)
	}
	return a.printTable([]string{"ENDPOINT", "URL", "STEPS", "LATENCY", "TLS", "EXPIRES", "MESSAGE"}, checkRows(rep), "MESSAGE")
}

func checkRows(rep netcheck.Report) [][]string {
	rows := make([][]string, 0, len(rep.Results))
	for _, r := range rep.Results {
		var steps []string
		for _, s := range r.Steps {
			mark := "ok"
			if !s.OK {
				mark = "FAIL"
			}
			steps = append(steps, s.Name+" "+mark)
		}
		days := ""
		if r.DaysToExpiry != nil {
			days = strconv.Itoa(*r.DaysToExpiry) + "d"
		}
		msg := r.Message
		if r.Code != "" {
			msg = string(r.Code) + " " + msg
		}
		rows = append(rows, []string{r.Endpoint, r.URL, strings.Join(steps, ", "), fmt.Sprintf("%.1fms", float64(r.Latency.Microseconds())/1000), r.TLSVersion, days, msg})
	}
	return rows
}
