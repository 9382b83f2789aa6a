package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/logbundle"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/cli"
)

func init() { extraCommands = append(extraCommands, newLogsCmd) }

func newLogsCmd(a *app) *cobra.Command {
	var full bool
	var output string
	cmd := &cobra.Command{
		Use:   "logs [--full] [--output FILE.zip]",
		Short: "Write a support bundle of the agent's logs, configuration and state, secrets redacted",
		Long: `logs writes a zip for whoever supports this machine: the service logs
(/var/opt/azcmagent/log), the extension handlers' logs and the extension
manager's state (the sealed desired state left out), localconfig.json,
agentconfig.json, the services' unit files and states, and the output of
"show -j", "check -j" (each endpoint given 3 seconds) and "audit -j".

Every file is redacted: no PEM block of any kind, API or bearer token,
onboarding credential, proxy credential, challenge secret or protected
setting is written. Key files (*.key, *.prv, certificates) are never read
into the bundle; a symbolic link in a log directory is listed in
MANIFEST.json as skipped, never followed. Without --full each log keeps its
last 1 MiB; --full keeps whole logs (up to 64 MiB each), still redacted.

The bundle is written atomically, mode 0600, as
arcagent-logs-<host>-<time>.zip in the current directory unless --output
names the file.`,
		Example: `  sudo arcagent logs
  sudo arcagent logs --full --output /tmp/web01.zip`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			if output == "" {
				host, _ := os.Hostname()
				output = logbundle.DefaultName(host, now)
			}
			if !strings.HasSuffix(strings.ToLower(output), ".zip") {
				return errcode.New(errcode.Usage, "--output %s: the bundle is a zip; name it FILE.zip", output)
			}
			o := logbundle.Options{Layout: a.layout(), Full: full, Now: func() time.Time { return now }, Extra: a.bundleExtras(cmd.Context())}
			m, err := logbundle.WriteFile(cmd.Context(), output, o)
			if err != nil {
				return err
			}
			abs, _ := filepath.Abs(output)
			if a.json {
				return a.printJSON(map[string]any{"output": abs, "files": len(m.Files), "skipped": m.Skipped})
			}
			fmt.Fprintf(a.stdout, "Wrote %s (%d files, %d left out: see MANIFEST.json)\n", abs, len(m.Files), len(m.Skipped))
			return nil
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "keep whole logs instead of the last 1 MiB of each (still redacted)")
	cmd.Flags().StringVar(&output, "output", "", "the bundle's file (default arcagent-logs-<host>-<time>.zip in the current directory)")
	return cmd
}

// bundleExtras runs show -j, check -j and audit -j in this process, with
// the same --root, for the bundle. A command that fails leaves its error
// text and exit status in the bundle instead.
func (a *app) bundleExtras(ctx context.Context) []logbundle.File {
	var out []logbundle.File
	for _, c := range []struct {
		name    string
		args    []string
		timeout time.Duration
	}{
		{"show.json", []string{"show", "-j"}, 10 * time.Second},
		{"check.json", []string{"check", "-j", "--timeout", "3s"}, 20 * time.Second},
		{"audit.json", []string{"audit", "-j"}, 60 * time.Second},
	} {
		args := c.args
		if a.root != "" {
			args = append([]string{"--root", a.root}, args...)
		}
		var stdout, stderr bytes.Buffer
		sub := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, log: a.log}
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		code := cli.Run(cctx, newRootCmd(sub), args, &stderr)
		cancel()
		data := stdout.Bytes()
		if code != 0 {
			data = fmt.Appendf(nil, "# arcagent %s: exit status %d\n%s\n%s", strings.Join(c.args, " "), code, stderr.String(), stdout.String())
			c.name = strings.TrimSuffix(c.name, ".json") + ".txt"
			if len(bytes.TrimSpace(stdout.Bytes())) > 0 && (c.args[0] == "check" || c.args[0] == "audit") {
				// A verdict (unreachable, findings) is still the JSON asked for.
				out = append(out, logbundle.File{Name: strings.TrimSuffix(c.name, ".txt") + ".json", Data: stdout.Bytes()})
				data = fmt.Appendf(nil, "# arcagent %s: exit status %d\n%s", strings.Join(c.args, " "), code, stderr.String())
			}
		}
		out = append(out, logbundle.File{Name: c.name, Data: data})
	}
	return out
}
