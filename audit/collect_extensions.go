package audit

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/saferead"
	"github.com/arcagent/arcagent/signing"
)

// collectExtensions lists installed extensions and gives each its verdicts:
// managed (installed by this agent: an install record exists, see
// installRecord), HandlerManifest.json, signature (the recorded DSSE
// envelope against the trust store), tamper check (files against the
// install record) and the local allow/block lists. The protected-settings
// certificates beside the trees are files, not extensions; the records
// directory is hidden: neither is listed.
func (c *collector) collectExtensions(ctx context.Context) {
	ef := &c.facts.Extensions
	ef.Installed = []ExtensionFact{}
	dir := c.l.ExtensionsDir()
	// The packages read inside the directory they are given; that the
	// directory itself lies inside the audited root (no absolute link on
	// the way to it) is checked here, through the root.
	names, err := []string(nil), c.confinedDir(layout.ExtensionsDir)
	if err == nil {
		names, err = extensions.ListInstalled(dir)
	}
	if err != nil {
		c.errorf("extensions", layout.ExtensionsDir, "%v", err)
		ef.Reason, ef.Error = "the extensions directory cannot be read: "+err.Error(), true
		return
	}
	ef.Available = true
	var opts []signing.TrustOption
	if !c.l.IsSystemRoot() && os.Geteuid() != 0 {
		opts = append(opts, signing.AllowNonRootOwner(nil))
	}
	var store *signing.TrustStore
	trustErr := c.confinedDir(layout.TrustDir)
	if trustErr != nil {
		trustErr = errcode.Wrap(signing.CodeTrustInsecure, trustErr, "refusing the trust store")
	} else {
		store, trustErr = signing.LoadTrustStore(c.l.TrustDir(), opts...)
	}
	if trustErr != nil {
		c.errorf("extensions", layout.TrustDir, "%v", trustErr)
	}
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		ef.Installed = append(ef.Installed, c.extensionFact(ctx, dir, name, store, trustErr))
	}
}

// confinedDir checks that the directory prod of the target resolves inside
// the audited root. A missing directory is not an error here (the callers
// treat it as empty).
func (c *collector) confinedDir(prod string) error {
	d, err := c.root.OpenDir(prod)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return d.Close()
}

func (c *collector) extensionFact(ctx context.Context, dir, name string, store *signing.TrustStore, trustErr error) ExtensionFact {
	x := ExtensionFact{Path: layout.Rel(layout.ExtensionsDir + "/" + name)}
	rec, env, recErr := c.installRecord(&x, dir, name)
	if recErr == nil {
		x.Publisher, x.Type, x.Version = rec.Package.Publisher, rec.Package.Type, rec.Package.Version
	} else if p, err := signing.ParsePackageFileName(name + ".zip"); err == nil {
		x.Publisher, x.Type, x.Version = p.Publisher, p.Type, p.Version
	} else {
		x.Type = name
	}
	x.Name = config.ExtensionName(x.Publisher, x.Type)
	x.ScriptCapable = IsScriptCapable(x.Type)

	if data, err := c.read(layout.ExtensionsDir+"/"+name+"/HandlerManifest.json", saferead.ConfigLimit); err == nil {
		x.Manifest.Present = true
		if _, err := extensions.ParseHandlerManifest(data); err != nil {
			x.Manifest.Error = errcode.Format(err)
		} else {
			x.Manifest.Valid = true
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		x.Manifest.Error = "HandlerManifest.json is missing"
	} else {
		x.Manifest.Present = true
		x.Manifest.Error = err.Error()
	}

	x.Tamper.Changed = []string{}
	switch {
	case x.Error != "":
		x.Signature.Reason, x.Tamper.Reason = x.Error, x.Error
	case !x.Managed:
		x.Signature.Reason = "no install record: the extension was not installed from a verified package (" + errcode.Format(recErr) + ")"
		x.Tamper.Reason = "no install record to compare the files with"
	case recErr != nil:
		x.Signature.Reason = "the install record is corrupt, so nothing vouches for this tree: " + errcode.Format(recErr)
		x.Tamper.Reason = "the install record is corrupt: " + errcode.Format(recErr)
	default:
		x.Signature.Present = true
		switch {
		case trustErr != nil:
			x.Signature.Reason = "the trust store was refused: " + errcode.Format(trustErr)
		default:
			res, err := extensions.VerifyRecord(ctx, store, rec, env)
			if err != nil {
				x.Signature.Reason = errcode.Format(err)
			} else {
				x.Signature.Verified = true
				x.Signature.Signer = res.Signer
				x.Signature.Reason = "signed by trusted key " + res.Signer + " for publisher " + rec.Package.Publisher
			}
		}
		rep, err := extensions.CompareTree(ctx, filepath.Join(dir, name), rec.Files)
		if err != nil {
			x.Tamper.Reason = errcode.Format(err)
			c.errorf("extensions", layout.ExtensionsDir+"/"+name, "tamper check: %v", err)
		} else {
			x.Tamper.Checked = true
			x.Tamper.Clean = rep.Clean()
			for _, ch := range rep.Changes {
				x.Tamper.Changed = append(x.Tamper.Changed, ch.Kind+": "+ch.Path)
			}
		}
	}
	if c.settings != nil {
		d := c.settings.ExtensionDecision(x.Name)
		x.Policy = PolicyDecision{Allowed: d.Allowed, Reason: d.Reason}
	} else {
		x.Policy = PolicyDecision{Reason: "the local configuration could not be read"}
	}
	return x
}

// installRecord reads the install record of the extension name and sets
// x's managed verdict. A tree whose record directory does not exist was
// not installed by this agent (unmanaged). One whose record exists was,
// or someone planted it: a record that cannot be parsed, is incomplete or
// is a link or special file is returned as recErr with Managed set, and
// the signature and tamper rules fail on it. A record that cannot be read
// at all (permission denied, a path leaving the root) is neither: x.Error
// makes every rule on the extension an error (fail closed).
func (c *collector) installRecord(x *ExtensionFact, dir, name string) (*extensions.InstallRecord, []byte, error) {
	recProd := layout.ExtensionsDir + "/" + extensions.RecordsDirName + "/" + name
	unreadable := func(err error) (*extensions.InstallRecord, []byte, error) {
		x.Managed = false
		x.Error = "the install record cannot be read: " + err.Error()
		x.ManagedReason = x.Error
		c.errorf("extensions", recProd, "%v", err)
		return nil, nil, err
	}
	_, err := c.root.Lstat(recProd)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		x.ManagedReason = "not installed by this agent: there is no install record in " + layout.Rel(recProd)
		return nil, nil, errcode.Wrap(extensions.CodeInstallRecord, err, "no install record for %s", name)
	case err != nil:
		return unreadable(err)
	}
	rec, env, err := extensions.ReadInstallRecord(dir, name)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return unreadable(err)
	case err != nil:
		x.Managed = true
		x.ManagedReason = "an install record exists but cannot be used: " + errcode.Format(err)
		return nil, nil, err
	}
	x.Managed = true
	x.ManagedReason = "installed by this agent: install record " + layout.Rel(recProd)
	return rec, env, nil
}
