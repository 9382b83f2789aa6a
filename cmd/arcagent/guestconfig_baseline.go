package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/guestconfig"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

func init() { guestconfigCommands = append(guestconfigCommands, newGuestConfigBaselineCmd) }

func newGuestConfigBaselineCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "baseline",
		Short: "Print the built-in Linux security baseline (or write it into a package directory)",
		Long: `The built-in Linux security baseline is the document ` + "`arcagent audit --profile host`" + `
evaluates (each resource is the rule ARC-HOST-<ID>). To have gcad keep it applied or
report its compliance from the control plane, write it into a directory, build and
sign it as a configuration package with your publisher key, publish and assign it.`,
		Example: `  arcagent guestconfig baseline
  arcagent guestconfig baseline --out baseline/ &&
    arcagent guestconfig build baseline/ --publisher Contoso.Security`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				_, err := a.stdout.Write(guestconfig.BaselineYAML())
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return errcode.Wrap(errcode.Usage, err, "create %s", out)
			}
			p := filepath.Join(out, guestconfig.DocumentFile)
			if err := atomicfile.WriteFile(p, guestconfig.BaselineYAML(), atomicfile.WriteOptions{Mode: 0o644}); err != nil {
				return errcode.Wrap(errcode.Usage, err, "write %s", p)
			}
			fmt.Fprintf(a.stdout, "wrote %s\n", p)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write "+guestconfig.DocumentFile+" into (default: print to stdout)")
	return cmd
}
