package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/internal/buildinfo"
)

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := buildinfo.Get()
			if a.json {
				return a.printJSON(i)
			}
			fmt.Fprintf(a.stdout, "arcagent %s\ncommit:     %s\nbuilt:      %s\ngo version: %s\nplatform:   %s\n", i.Version, i.Commit, i.BuildDate, i.GoVersion, i.Platform)
			return nil
		},
	}
}
