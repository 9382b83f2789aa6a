package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/extd"
	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/agent/guestconfig"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/cli"
	"github.com/arcagent/arcagent/signing"
)

func newPackageCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "package",
		Short: "Build, sign, verify, install and check extension packages",
		Long: `Extension packages are zips named <Publisher>.<Type>-<Version>.zip with a
HandlerManifest.json at the root. A package is signed with a DSSE envelope
(<package>.sig.json) whose payload is an in-toto Statement v1.

Flow: package keygen → package build → package sign → trust add →
package verify → package install → package check.`,
	}
	cmd.AddCommand(newPackageKeygenCmd(a), newPackageBuildCmd(a), newPackageSignCmd(a),
		newPackageVerifyCmd(a), newPackageInstallCmd(a), newPackageCheckCmd(a), newCatalogCmd(a))
	mapPermissionErrors(cmd)
	return cmd
}

// mapPermissionErrors makes an uncoded "permission denied" from any verb
// under cmd an ARC0018 error, whose remedy says to run as root or use --root.
func mapPermissionErrors(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		mapPermissionErrors(c)
	}
	if cmd.RunE == nil {
		return
	}
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		err := run(c, args)
		if _, coded := errcode.CodeOf(err); err != nil && !coded && errors.Is(err, fs.ErrPermission) {
			return errcode.Wrap(errcode.PermissionDenied, err, "%s", c.CommandPath())
		}
		return err
	}
}

// maxSignatureFile bounds what is read from a --signature file.
const maxSignatureFile = 1 << 20

// readSignature reads an envelope file, at most maxSignatureFile bytes.
func readSignature(path, hint string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errcode.Wrap(signing.CodeFileAccess, err, "signature%s", hint)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSignatureFile+1))
	if err != nil {
		return nil, errcode.Wrap(signing.CodeFileAccess, err, "read signature %s", path)
	}
	if len(data) > maxSignatureFile {
		return nil, errcode.New(signing.CodeMalformedEnvelope, "%s is larger than %d bytes: not a signature envelope", path, maxSignatureFile)
	}
	return data, nil
}

type keygenOptions struct {
	out       string
	algorithm string
	force     bool
}

func newPackageKeygenCmd(a *app) *cobra.Command {
	var o keygenOptions
	cmd := &cobra.Command{
		Use:   "keygen --out NAME",
		Short: "Generate a signing key pair (NAME.key, NAME.pub)",
		Long: `Generates an ECDSA P-256 key pair (or Ed25519 with --algorithm ed25519) and
writes NAME.key (private, mode 0600) and NAME.pub (public, 0644). When
ARCAGENT_KEY_PASSWORD is set, the private key is encrypted with it.`,
		Example: `  ARCAGENT_KEY_PASSWORD='…' arcagent package keygen --out contoso`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.out == "" {
				return errcode.New(errcode.Usage, "package keygen needs --out NAME")
			}
			alg, err := signing.ParseAlgorithm(o.algorithm)
			if err != nil {
				return err
			}
			base := strings.TrimSuffix(strings.TrimSuffix(o.out, ".key"), ".pub")
			privPath, pubPath := base+".key", base+".pub"
			if !o.force {
				for _, p := range []string{privPath, pubPath} {
					if _, err := os.Lstat(p); err == nil {
						return errcode.New(errcode.Usage, "%s exists; choose another --out or pass --force to replace it", p)
					}
				}
			}
			pw := signing.PasswordFromEnv()
			kp, err := signing.GenerateKey(alg, pw)
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(privPath, kp.PrivatePEM, atomicfile.WriteOptions{Mode: 0o600}); err != nil {
				return errcode.Wrap(errcode.WriteFailed, err, "write private key")
			}
			if err := atomicfile.WriteFile(pubPath, kp.PublicPEM, atomicfile.WriteOptions{Mode: 0o644}); err != nil {
				return errcode.Wrap(errcode.WriteFailed, err, "write public key")
			}
			if !kp.Encrypted {
				a.warnf("%s is not encrypted; set %s to encrypt private keys", privPath, signing.PasswordEnv)
			}
			a.log.Info("key generated", "algorithm", kp.Algorithm, "keyId", kp.KeyID)
			if a.json {
				return a.printJSON(map[string]any{"privateKey": privPath, "publicKey": pubPath, "algorithm": kp.Algorithm, "keyId": kp.KeyID, "encrypted": kp.Encrypted})
			}
			fmt.Fprintf(a.stdout, "private key: %s\npublic key:  %s\nalgorithm:   %s\nkey id:      %s\n", privPath, pubPath, kp.Algorithm, kp.KeyID)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.out, "out", "", "base name of the key files (writes NAME.key and NAME.pub)")
	cmd.Flags().StringVar(&o.algorithm, "algorithm", "ecdsa-p256", "ecdsa-p256 or ed25519")
	cmd.Flags().BoolVar(&o.force, "force", false, "replace existing key files")
	return cmd
}

// pkgFlags are the --publisher/--type/--version flags shared by verbs.
type pkgFlags struct{ publisher, typ, version string }

func (p *pkgFlags) register(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&p.publisher, "publisher", "", "publisher "+what+" (e.g. Contoso.Monitoring)")
	cmd.Flags().StringVar(&p.typ, "type", "", "extension type "+what+" (e.g. StatusReporter)")
	cmd.Flags().StringVar(&p.version, "version", "", "version "+what+" (e.g. 1.0.0)")
}

func (p *pkgFlags) pkg() signing.Package {
	return signing.Package{Publisher: p.publisher, Type: p.typ, Version: p.version}
}

func (p *pkgFlags) expect() signing.Expectation {
	return signing.Expectation{Publisher: p.publisher, Type: p.typ, Version: p.version}
}

type buildOptions struct {
	pkgFlags
	out string
}

func newPackageBuildCmd(a *app) *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build DIR --publisher P --type T --version V",
		Short: "Validate HandlerManifest.json and build <P>.<T>-<V>.zip reproducibly",
		Example: `  arcagent package build examples/extensions/status-reporter \
      --publisher Contoso.Monitoring --type StatusReporter --version 1.0.0 --out dist`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.publisher == "" || o.typ == "" || o.version == "" {
				return errcode.New(errcode.Usage, "package build needs --publisher, --type and --version")
			}
			if o.out != "" {
				if err := os.MkdirAll(o.out, 0o755); err != nil {
					return errcode.Wrap(errcode.WriteFailed, err, "create %s", o.out)
				}
			}
			res, err := extensions.BuildPackage(cmd.Context(), extensions.BuildOptions{Dir: args[0], Package: o.pkg(), OutDir: o.out})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "built %s (%d files, %d bytes)\nsha256: %s\n", res.Path, res.Files, res.Size, res.SHA256)
			return nil
		},
	}
	o.register(cmd, "of the package")
	cmd.Flags().StringVar(&o.out, "out", "", "output directory (default: current directory)")
	return cmd
}

type signOptions struct {
	pkgFlags
	key  string
	out  string
	kind string
}

// kindFlag registers --kind (extension or guestconfig).
func kindFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "kind", string(signing.KindExtension), "package kind: extension or guestconfig (a configuration package; the signature is not valid for the other kind)")
}

func newPackageSignCmd(a *app) *cobra.Command {
	var o signOptions
	cmd := &cobra.Command{
		Use:   "sign PKG --key KEY",
		Short: "Sign a package: write PKG.sig.json (DSSE envelope, in-toto statement)",
		Long: `Hashes the package and writes a DSSE envelope whose payload is an in-toto
Statement v1 (subject: file name and sha256; predicate: publisher, type,
version, size). Publisher, type and version are read from the file name
<Publisher>.<Type>-<Version>.zip unless given. An encrypted key is opened
with ARCAGENT_KEY_PASSWORD.

--kind guestconfig signs a configuration package (built by "arcagent
guestconfig build"): the zip must hold a valid guestconfig.yaml whose name
and version are the statement's type and version. An extension signature
never verifies as a configuration package's, nor the reverse.`,
		Example: `  arcagent package sign dist/Contoso.Monitoring.StatusReporter-1.0.0.zip --key contoso.key`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkgPath := args[0]
			if o.key == "" {
				return errcode.New(errcode.Usage, "package sign needs --key KEY")
			}
			p, err := signing.ParsePackageFileName(pkgPath)
			if err != nil && (o.publisher == "" || o.typ == "" || o.version == "") {
				return fmt.Errorf("%w (or give --publisher, --type and --version)", err)
			}
			if o.publisher != "" {
				p.Publisher = o.publisher
			}
			if o.typ != "" {
				p.Type = o.typ
			}
			if o.version != "" {
				p.Version = o.version
			}
			kind, err := signing.ParseKind(o.kind)
			if err != nil {
				return errcode.Wrap(errcode.Usage, err, "--kind")
			}
			if filepath.Base(pkgPath) != p.FileName() {
				if kind == signing.KindGuestConfig {
					return errcode.New(errcode.Usage, "the file is named %s but would be signed as %s: a configuration package is signed under the name guestconfig build gave it", filepath.Base(pkgPath), p.FileName())
				}
				a.warnf("the file is named %s but the statement names %s", filepath.Base(pkgPath), p.FileName())
			}
			signer, err := signing.LoadSigner(o.key, signing.PasswordFromEnv())
			if err != nil {
				return err
			}
			sign := extensions.SignPackage
			if kind == signing.KindGuestConfig {
				sign = guestconfig.SignPackage
			}
			env, st, err := sign(cmd.Context(), pkgPath, p, signer)
			if err != nil {
				return err
			}
			out := o.out
			if out == "" {
				out = pkgPath + signing.SignatureSuffix
			}
			if err := atomicfile.WriteFile(out, env, atomicfile.WriteOptions{Mode: 0o644}); err != nil {
				return errcode.Wrap(errcode.WriteFailed, err, "write signature")
			}
			a.log.Info("package signed", "package", p.Name(), "signature", out)
			if a.json {
				return a.printJSON(map[string]any{"signature": out, "statement": st})
			}
			fmt.Fprintf(a.stdout, "signed %s\nsignature: %s\nsha256:    %s\n", p.Name(), out, st.SHA256())
			return nil
		},
	}
	o.register(cmd, "in the statement (default: from the file name)")
	cmd.Flags().StringVar(&o.key, "key", "", "PEM private key made by \"arcagent package keygen\"")
	cmd.Flags().StringVar(&o.out, "out", "", "signature file (default: PKG.sig.json)")
	kindFlag(cmd, &o.kind)
	return cmd
}

type verifyOptions struct {
	pkgFlags
	signature string
	key       string
	trust     string
	kind      string
}

// verdict is the printed result of verify, install and check.
type verdict struct {
	Valid   bool                `json:"valid"`
	Package string              `json:"package,omitempty"`
	Signer  string              `json:"signer,omitempty"`
	KeyID   string              `json:"keyId,omitempty"`
	SHA256  string              `json:"sha256,omitempty"`
	Size    int64               `json:"size,omitempty"`
	Dir     string              `json:"dir,omitempty"`
	Code    errcode.Code        `json:"code,omitempty"`
	Reason  string              `json:"reason,omitempty"`
	Remedy  string              `json:"remedy,omitempty"`
	Changes []extensions.Change `json:"changes,omitempty"`
}

// invalidOrErr prints an INVALID verdict for errors whose exit status is 1
// (a negative verdict) and returns the silent exit; other errors (bad usage,
// cannot complete) are returned as they are.
func (a *app) invalidOrErr(err error, v verdict) error {
	code, coded := errcode.CodeOf(err)
	if !coded || errcode.ExitCode(err) != errcode.ExitFindings {
		return err
	}
	v.Valid, v.Code, v.Reason, v.Remedy = false, code, errcode.Format(err), errcode.RemedyOf(err)
	if a.json {
		if perr := a.printJSON(v); perr != nil {
			return perr
		}
	} else {
		fmt.Fprintf(a.stdout, "INVALID: %s\n", v.Reason)
		fmt.Fprintf(a.stderr, "what to do: %s\n", v.Remedy)
	}
	return silentError{code: errcode.ExitFindings}
}

func newPackageVerifyCmd(a *app) *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify PKG [--signature F] [--key PUB | --trust DIR] [--publisher P --type T --version V]",
		Short: "Verify a package and its signature; exit 0 valid, 1 invalid, 2 bad usage",
		Long: `Verifies, failing closed in this order: the envelope is signed by a trusted
key whose entry allows the statement's publisher; the statement's publisher,
type and version equal the ones given; the size and sha256 of the file equal
the signed subject. The package is read once; memory does not grow with it.

By default the keys come from the trust store; --trust DIR names another
store, --key PUB trusts one public key for any publisher.

Exit status: 0 valid, 1 invalid, 2 bad usage or unreadable input,
3 could not complete (e.g. the trust store is refused).`,
		Example: `  arcagent package verify dist/Contoso.Monitoring.StatusReporter-1.0.0.zip \
      --publisher Contoso.Monitoring --type StatusReporter --version 1.0.0`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.key != "" && o.trust != "" {
				return errcode.New(errcode.Usage, "give --key or --trust, not both")
			}
			kind, err := signing.ParseKind(o.kind)
			if err != nil {
				return errcode.Wrap(errcode.Usage, err, "--kind")
			}
			vo := signing.VerifyOptions{Package: args[0], Expect: o.expect(), Logger: a.log}
			vo.Expect.Kind = kind
			if _, err := os.Stat(args[0]); err != nil {
				return errcode.Wrap(signing.CodeFileAccess, err, "package")
			}
			sigPath := o.signature
			if sigPath == "" {
				sigPath = args[0] + signing.SignatureSuffix
			}
			env, err := readSignature(sigPath, " (give --signature F if it is elsewhere)")
			if err != nil {
				return err
			}
			vo.Envelope = env
			if o.key != "" {
				pub, _, err := signing.LoadPublicKeyFile(o.key)
				if err != nil {
					return err
				}
				vo.Key = pub
			} else {
				if vo.Trust, err = a.loadTrust(o.trust); err != nil {
					return err
				}
			}
			if o.expect().IsZero() {
				a.warnf("no --publisher/--type/--version given: accepting whatever package the signature names")
			}
			res, err := signing.VerifyPackage(cmd.Context(), vo)
			if err != nil {
				return a.invalidOrErr(err, verdict{Package: filepath.Base(args[0])})
			}
			v := verdict{Valid: true, Package: res.Package.Name(), Signer: res.Signer, KeyID: res.KeyID, SHA256: res.SHA256, Size: res.Size}
			if a.json {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "VALID: %s signed by %s (%s)\nsha256: %s (%d bytes)\n", v.Package, v.Signer, v.KeyID, v.SHA256, v.Size)
			return nil
		},
	}
	o.register(cmd, "that was requested")
	cmd.Flags().StringVar(&o.signature, "signature", "", "envelope file (default: PKG.sig.json)")
	cmd.Flags().StringVar(&o.key, "key", "", "verify with this PEM public key instead of the trust store")
	cmd.Flags().StringVar(&o.trust, "trust", "", "trust store directory (default: the agent's trust directory)")
	kindFlag(cmd, &o.kind)
	return cmd
}

type installOptions struct {
	pkgFlags
	signature string
	replace   bool
}

func newPackageInstallCmd(a *app) *cobra.Command {
	var o installOptions
	cmd := &cobra.Command{
		Use:   "install PKG --publisher P --type T --version V [--signature F] [--replace]",
		Short: "Check local policy, verify a package against the trust store, then extract it safely",
		Long: `Installs through the extension manager's own install path. First the local
controls decide (extensions.enabled, the blocklist, the allowlist, monitor
mode): a refused extension is not read or written at all (exit 1, ARC0151).
Then the package is verified exactly as "package verify" does (against the
trust store), and extracted to /var/lib/waagent/<Publisher>.<Type>-<Version>/
(mode 0700) through a temporary directory, and records every file with its
sha256, plus the envelope, in /var/lib/waagent/.arcagent/<name>/.
"package check" later compares the tree with that record. The extension
manager records it as installed locally (arcagent extension list); it does
not run the handler's commands, and the control plane never removes it.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.publisher == "" || o.typ == "" || o.version == "" {
				return errcode.New(errcode.Usage, "package install needs --publisher, --type and --version: the package that is expected")
			}
			var env []byte
			if o.signature != "" {
				var err error
				if env, err = readSignature(o.signature, ""); err != nil {
					return err
				}
			}
			if _, err := os.Stat(args[0]); err != nil {
				return errcode.Wrap(signing.CodeFileAccess, err, "package")
			}
			res, err := a.manager(extd.Options{}).InstallLocal(cmd.Context(), extd.LocalInstall{
				Package: args[0], Envelope: env, Expect: o.expect(), Replace: o.replace,
			})
			if errors.Is(err, extd.CodeRefused) {
				return err
			}
			if err != nil {
				return a.invalidOrErr(err, verdict{Package: filepath.Base(args[0])})
			}
			v := verdict{Valid: true, Package: res.Record.Name, Signer: res.Verified.Signer, KeyID: res.Verified.KeyID, SHA256: res.Verified.SHA256, Size: res.Verified.Size, Dir: res.Dir}
			if a.json {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "installed %s in %s (%d entries), signed by %s\nrecord: %s\n", v.Package, v.Dir, len(res.Record.Files), v.Signer, res.RecordDir)
			return nil
		},
	}
	o.register(cmd, "that is expected")
	cmd.Flags().StringVar(&o.signature, "signature", "", "envelope file (default: PKG.sig.json)")
	cmd.Flags().BoolVar(&o.replace, "replace", false, "replace an installed tree of the same name")
	return cmd
}

type checkOptions struct {
	treeOnly bool
}

func newPackageCheckCmd(a *app) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check DIR|NAME",
		Short: "Check an installed extension against its install record; exit 1 when tampered",
		Long: `Compares an installed extension's files with the record written at install
time and lists changed, missing and added files (HandlerEnvironment.json,
config/, status/ and heartbeat.log are written at run time and ignored).
Unless --tree-only is given, the recorded envelope is also verified against
the trust store. DIR is the extension directory; NAME is
<Publisher>.<Type>-<Version> under the extensions directory.

Exit status: 0 intact, 1 tampered or no longer trusted, 2 bad usage,
3 could not complete.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				if strings.ContainsRune(dir, os.PathSeparator) {
					return errcode.New(signing.CodeFileAccess, "%s is not a directory", dir)
				}
				dir = filepath.Join(a.layout().ExtensionsDir(), dir)
			}
			dir = filepath.Clean(dir)
			if abs, err := filepath.Abs(dir); err == nil {
				dir = abs
			}
			co := extensions.CheckOptions{Dir: dir, TreeOnly: o.treeOnly}
			if !o.treeOnly {
				var err error
				if co.Trust, err = a.loadTrust(""); err != nil {
					return err
				}
			}
			r, err := extensions.Check(cmd.Context(), co)
			if err != nil {
				return err
			}
			name := r.Name
			v := verdict{Valid: r.Valid, Package: name, Dir: r.Dir, Signer: r.Signer, KeyID: r.KeyID, SHA256: r.SHA256, Code: r.Code, Reason: r.Reason, Remedy: r.Remedy, Changes: r.Changes}
			if a.json {
				if err := a.printJSON(v); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stdout, "%s: %s: %s\n", r.State(), name, v.Reason)
				for _, c := range v.Changes {
					fmt.Fprintf(a.stdout, "  %-8s %s", c.Kind, c.Path)
					if c.Detail != "" {
						fmt.Fprintf(a.stdout, " (%s)", c.Detail)
					}
					fmt.Fprintln(a.stdout)
				}
				if !v.Valid && v.Remedy != "" {
					fmt.Fprintf(a.stderr, "what to do: %s\n", v.Remedy)
				}
			}
			if !v.Valid {
				return silentError{code: errcode.ExitFindings}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.treeOnly, "tree-only", false, "only compare the files; do not verify the recorded signature")
	return cmd
}

type catalogSignOptions struct {
	keys []string
	out  string
}

type catalogVerifyOptions struct {
	name      string
	threshold int
	dryRun    bool
}

func newCatalogCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Sign and verify release catalogs (threshold signatures, rollback and freeze protection)",
	}
	var so catalogSignOptions
	sign := &cobra.Command{
		Use:   "sign CATALOG.json --key KEY [--key KEY2 …]",
		Short: "Sign a catalog document with one or more keys (writes CATALOG.json.sig.json)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(so.keys) == 0 {
				return errcode.New(errcode.Usage, "package catalog sign needs at least one --key")
			}
			data, err := readSignature(args[0], "")
			if err != nil {
				return err
			}
			c, err := signing.ParseCatalog(data)
			if err != nil {
				return err
			}
			var signers []signature.Signer
			for _, k := range so.keys {
				s, err := signing.LoadSigner(k, signing.PasswordFromEnv())
				if err != nil {
					return err
				}
				signers = append(signers, s)
			}
			env, err := signing.SignCatalog(c, signers...)
			if err != nil {
				return err
			}
			out := so.out
			if out == "" {
				out = args[0] + signing.SignatureSuffix
			}
			if err := atomicfile.WriteFile(out, env, atomicfile.WriteOptions{Mode: 0o644}); err != nil {
				return errcode.Wrap(errcode.WriteFailed, err, "write signed catalog")
			}
			if a.json {
				return a.printJSON(map[string]any{"signature": out, "name": c.Name, "version": c.Version, "signatures": len(signers)})
			}
			fmt.Fprintf(a.stdout, "signed catalog %s version %d with %d key(s): %s\n", c.Name, c.Version, len(signers), out)
			return nil
		},
	}
	sign.Flags().StringSliceVar(&so.keys, "key", nil, "PEM private key (repeatable)")
	sign.Flags().StringVar(&so.out, "out", "", "envelope file (default: CATALOG.json.sig.json)")

	var vo catalogVerifyOptions
	verify := &cobra.Command{
		Use:   "verify ENVELOPE --name NAME [--threshold N] [--dry-run]",
		Short: "Verify a signed catalog and record its version; exit 0 valid, 1 refused, 2 bad usage",
		Long: `Verifies that at least --threshold distinct keys trusted for catalog NAME
(trust add … --catalog NAME) signed the catalog, that it is the NAME
catalog, that it has not expired (freeze: ARC0114) and that its version is
not lower than the last one trusted (rollback: ARC0113). The version is then
recorded in the trust directory, unless --dry-run.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if vo.name == "" {
				return errcode.New(errcode.Usage, "package catalog verify needs --name NAME")
			}
			env, err := readSignature(args[0], "")
			if err != nil {
				return err
			}
			store, err := a.loadTrust("")
			if err != nil {
				return err
			}
			c, err := signing.VerifyCatalog(cmd.Context(), env, signing.CatalogOptions{
				Name: vo.name, Threshold: vo.threshold, Trust: store, StateDir: a.layout().TrustDir(), NoPersist: vo.dryRun,
			})
			if err != nil {
				return a.invalidOrErr(err, verdict{Package: vo.name})
			}
			if a.json {
				return a.printJSON(map[string]any{"valid": true, "catalog": c})
			}
			fmt.Fprintf(a.stdout, "VALID: catalog %s version %d, %d entries, expires %s\n", c.Name, c.Version, len(c.Entries), cli.Time(c.Expires))
			return nil
		},
	}
	verify.Flags().StringVar(&vo.name, "name", "", "catalog name expected (e.g. extensions)")
	verify.Flags().IntVar(&vo.threshold, "threshold", 1, "distinct trusted keys that must have signed")
	verify.Flags().BoolVar(&vo.dryRun, "dry-run", false, "verify without recording the version")
	cmd.AddCommand(sign, verify)
	return cmd
}
