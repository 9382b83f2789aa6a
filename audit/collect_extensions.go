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
// HandlerManifest.json, signature (the recorded DSSE envelope against the
// trust store), tamper check (files against the install record) and the
// local allow/block lists.
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
	recProd := layout.ExtensionsDir + "/" + extensions.RecordsDirName + "/" + name
	var (
		rec    *extensions.InstallRecord
		env    []byte
		recErr error
	)
	// Whether a record exists decides "managed": a tree with no record
	// directory at all was not installed by this agent; one with a record
	// that cannot be parsed, or with a part of it missing, was (or someone
	// planted it) and is judged by the signature and tamper rules.
	_, statErr := c.root.Lstat(recProd)
	switch {
	case errors.Is(statErr, fs.ErrNotExist):
		recErr = errcode.Wrap(extensions.CodeInstallRecord, statErr, "no install record for %s", name)
		x.ManagedReason = "not installed by this agent: there is no install record in " + layout.Rel(recProd)
	case statErr != nil:
		recErr = statErr
	default:
		rec, env, recErr = extensions.ReadInstallRecord(dir, name)
		x.Managed = true
		x.ManagedReason = "installed by this agent: install record " + layout.Rel(recProd)
		if recErr != nil {
			x.ManagedReason = "an install record exists but cannot be used: " + errcode.Format(recErr)
		}
	}
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) || errors.Is(recErr, fs.ErrPermission) {
		// Unreadable is not "unmanaged" and not corrupt: the rules on
		// this extension cannot judge it (fail closed).
		x.Managed = false
		x.Error = "the install record cannot be read: " + recErr.Error()
		x.ManagedReason = x.Error
		c.errorf("extensions", recProd, "%v", recErr)
	}
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
	case recErr != nil && !x.Managed:
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
