package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/controlplane"
)

// databaseEnv is read when --database is not given, so that a password in
// the URL need not be on the command line (where ps shows it).
const databaseEnv = "ARCSERVER_DATABASE"

func databaseFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "database", "", "PostgreSQL database URL, postgres://USER[:PASSWORD]@HOST:PORT/DB?sslmode=… (default $"+databaseEnv+"; unset: DIR/arcserver.db)")
}

// databaseSpec is the --database value, or else $ARCSERVER_DATABASE.
func databaseSpec(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv(databaseEnv)
}

func newMigrateCmd(a *app) *cobra.Command {
	var o controlplane.MigrateOptions
	cmd := &cobra.Command{
		Use:   "migrate --data DIR --database URL",
		Short: "Copy a data directory's SQLite database into an empty PostgreSQL database",
		Long: `migrate copies every table of DIR/arcserver.db into the PostgreSQL database at
URL (or $ARCSERVER_DATABASE), which must be empty: it never merges. The copy is
one transaction that checks each table's row count before it commits, so a
failure leaves the target empty and migrate can run again. Stop the server
first (a server writing meanwhile would lose those writes); the SQLite database
is left as it was. Then serve with: arcserver serve --data DIR --database URL.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Database = databaseSpec(o.Database)
			res, err := controlplane.Migrate(cmd.Context(), o)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "Copied %s into %s:\n", res.Source, res.Target)
			for _, t := range res.Tables {
				fmt.Fprintf(a.stdout, "  %-32s %d rows\n", t.Table, t.Rows)
			}
			fmt.Fprintf(a.stdout, "Next:\n  arcserver serve --data %s --database URL\n", o.DataDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data", "", "data directory whose database to copy (required)")
	databaseFlag(cmd, &o.Database)
	return cmd
}
