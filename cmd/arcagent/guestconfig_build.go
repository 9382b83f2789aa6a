package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/guestconfig"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/saferead"
	"github.com/arcagent/arcagent/internal/safetext"
	"github.com/arcagent/arcagent/signing"
)

func init() {
	guestconfigCommands = append(guestconfigCommands, newGuestConfigBuildCmd, newGuestConfigCheckCmd)
}

// gcParamPairs parses repeated --parameters k=v flags.
func gcParamPairs(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, errcode.New(errcode.Usage, "--parameters %q: write name=value", p)
		}
		if _, dup := out[k]; dup {
			return nil, errcode.New(errcode.Usage, "--parameters gives %s twice", k)
		}
		out[k] = v
	}
	return out, nil
}

type gcBuildOptions struct {
	publisher string
	out       string
	params    []string
}

func newGuestConfigBuildCmd(a *app) *cobra.Command {
	var o gcBuildOptions
	cmd := &cobra.Command{
		Use:   "build DIR --publisher P [--out OUTDIR]",
		Short: "Validate DIR/guestconfig.yaml and build <P>.<Name>-<Version>.zip reproducibly",
		Long: `Parses and compiles DIR/guestconfig.yaml (with the parameters' defaults, or
sample values from --parameters), then zips it with every other regular
file of DIR (sorted names, fixed times, mode 0644; .git skipped; links
refused) into <Publisher>.<Name>-<Version>.zip, named after the
document's name and version. Sign it with
"arcagent package sign PKG --kind guestconfig --key KEY".`,
		Example: `  arcagent guestconfig build ./baseline --publisher Contoso.Baseline --out dist`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.publisher == "" {
				return errcode.New(errcode.Usage, "guestconfig build needs --publisher P")
			}
			params, err := gcParamPairs(o.params)
			if err != nil {
				return err
			}
			if o.out != "" {
				if err := os.MkdirAll(o.out, 0o755); err != nil {
					return errcode.Wrap(errcode.WriteFailed, err, "create %s", o.out)
				}
			}
			res, err := guestconfig.BuildPackage(cmd.Context(), guestconfig.BuildOptions{Dir: args[0], Publisher: o.publisher, OutDir: o.out, Parameters: params})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "built %s (%d resources, %d files, %d bytes)\nsha256: %s\n", res.Path, res.Resources, res.Files, res.Size, res.SHA256)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.publisher, "publisher", "", "publisher of the package (e.g. Contoso.Baseline)")
	cmd.Flags().StringVar(&o.out, "out", "", "output directory (default: current directory; -o is the global output format)")
	cmd.Flags().StringArrayVar(&o.params, "parameters", nil, "name=value sample for a parameter without a default (repeatable)")
	return cmd
}

type gcCheckOptions struct {
	params []string
}

// checkedResource is one line of `guestconfig check`.
type checkedResource struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Title string `json:"title,omitempty"`
}

func newGuestConfigCheckCmd(a *app) *cobra.Command {
	var o gcCheckOptions
	cmd := &cobra.Command{
		Use:   "check FILE|PKG.zip [--parameters name=value ...]",
		Short: "Parse and compile a configuration document or package; list its resources",
		Long: `Parses and compiles a configuration document (a YAML file) or the
guestconfig.yaml of a configuration package zip, with the parameter values
given (defaults otherwise), and lists its resources. Nothing is evaluated.

A zip with a signature beside it (PKG.sig.json) is verified against the
trust store first, as gcad would; a document that was not verified (a YAML
file, an unsigned zip) may not hold exec resources.

Exit status: 0 valid, 2 bad document or usage, 3 package refused or
unreadable.`,
		Example: `  arcagent guestconfig check baseline/guestconfig.yaml --parameters sshPort=22`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			params, err := gcParamPairs(o.params)
			if err != nil {
				return err
			}
			path := args[0]
			var pkg *guestconfig.Package
			switch {
			case strings.HasSuffix(path, ".zip"):
				pkg, err = a.readGuestConfigPackage(cmd, path)
			default:
				var data []byte
				if data, err = saferead.File(path, guestconfig.MaxDocument); err != nil {
					return errcode.Wrap(signing.CodeFileAccess, err, "read %s", path)
				}
				var d *guestconfig.Document
				if d, err = guestconfig.Parse(filepath.Base(path), data); err == nil {
					pkg = &guestconfig.Package{Doc: d}
				}
			}
			if err != nil {
				return err
			}
			c, err := pkg.Compile(params)
			if err != nil {
				return err
			}
			rs := make([]checkedResource, 0, len(c.Resources))
			for _, r := range c.Resources {
				rs = append(rs, checkedResource{ID: r.Entry.ID, Type: r.Entry.Type, Title: r.Entry.Title})
			}
			if a.json {
				return a.printJSON(map[string]any{"name": c.Doc.Name, "version": c.Doc.Version, "verified": c.Signed, "resources": rs})
			}
			verified := "not signed"
			if c.Signed {
				verified = "signature verified, signed by " + safetext.Line(pkg.Verified.Signer)
			}
			fmt.Fprintf(a.stdout, "%s %s: %d resources (%s)\n", c.Doc.Name, c.Doc.Version, len(rs), verified)
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tTITLE")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ID, r.Type, safetext.Line(r.Title))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringArrayVar(&o.params, "parameters", nil, "name=value for a parameter of the document (repeatable)")
	return cmd
}

// readGuestConfigPackage reads a package zip: verified through the trust
// store when a signature lies beside it, read unverified otherwise.
func (a *app) readGuestConfigPackage(cmd *cobra.Command, path string) (*guestconfig.Package, error) {
	if _, err := os.Stat(path + signing.SignatureSuffix); err == nil {
		trust, err := a.loadTrust("")
		if err != nil {
			return nil, err
		}
		var expect signing.Expectation
		if p, err := signing.ParsePackageFileName(path); err == nil {
			expect = signing.Expectation{Publisher: p.Publisher, Type: p.Type, Version: p.Version}
		}
		return guestconfig.LoadPackage(cmd.Context(), guestconfig.LoadOptions{Path: path, Trust: trust, Expect: expect})
	}
	data, err := saferead.File(path, guestconfig.MaxPackage)
	if err != nil {
		return nil, errcode.Wrap(signing.CodeFileAccess, err, "read %s", path)
	}
	return guestconfig.ReadPackage(cmd.Context(), data)
}
