package controlplane

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/signing"
)

// Package repository limits.
const (
	// MaxPackageSize bounds an uploaded package zip.
	MaxPackageSize = 64 << 20
	// maxEnvelope bounds its DSSE envelope (signing refuses more anyway).
	maxEnvelope = 1 << 20
	// maxPublishBody is the JSON body of a publish: the zip in base64,
	// the envelope and the field names.
	maxPublishBody = (MaxPackageSize+2)/3*4 + maxEnvelope + 4<<10
	// maxManifest bounds HandlerManifest.json (as the agent does).
	maxManifest = 64 << 10
	// maxGuestConfigPackage and maxGuestConfigDocument are the machine's
	// bounds of a guest configuration package and of its guestconfig.yaml
	// (agent/guestconfig MaxPackage and MaxDocument, which the control
	// plane may not import).
	maxGuestConfigPackage  = 16 << 20
	maxGuestConfigDocument = 1 << 20
)

// PackagesDir is the directory of the data directory where servers before
// the package bytes moved into the database kept the published packages:
// <sha256>.zip and <sha256>.sig.json. They are imported at start
// (ImportPackageFiles) and no longer written.
const PackagesDir = "packages"

// handlerManifestName is the file every extension package holds at its root.
const handlerManifestName = "HandlerManifest.json"

// guestConfigDocumentName is the file every guest configuration package
// holds at its root.
const guestConfigDocumentName = "guestconfig.yaml"

// publication is a publish request that passed every check.
type publication struct {
	kind     string // store.KindExtension or store.KindGuestConfig
	pkg      signing.Package
	sha256   string
	size     int64
	keyID    string
	envelope []byte
}

// validatePublish checks a publish request without deciding trust: the
// envelope is well-formed DSSE whose payload is an in-toto Statement v1
// with the arcagent package predicate, the statement's subject is the
// package file name <Publisher>.<Type>-<Version>.zip of that predicate with
// the sha256 and size of the uploaded bytes, and the zip is a plausible
// package of the kind the predicate type says: an extension
// (HandlerManifest.json at its root holding one handler object) or a guest
// configuration package (guestconfig.yaml at its root). Which keys may
// sign for a publisher is the machine's decision.
func validatePublish(req *apiv1.PublishPackageRequest) (*publication, error) {
	if len(req.Package) == 0 {
		return nil, errf(apiv1.CodeBadRequest, "package is required: the bytes of the package zip (base64 in JSON)")
	}
	if len(req.Package) > MaxPackageSize {
		return nil, errf(apiv1.CodeTooLarge, "the package is %d bytes; the limit is %d", len(req.Package), MaxPackageSize)
	}
	envBytes := bytes.TrimSpace(req.Envelope)
	if len(envBytes) == 0 || string(envBytes) == "null" {
		return nil, errf(apiv1.CodeBadRequest, "envelope is required: the package's DSSE signature file (<package>.zip.sig.json), as a JSON object; sign the package with `arcagent package sign`")
	}
	if len(envBytes) > maxEnvelope {
		return nil, errf(apiv1.CodeTooLarge, "the envelope is %d bytes; the limit is %d", len(envBytes), maxEnvelope)
	}
	env, payload, err := signing.ParseEnvelope(envBytes, signing.PayloadType)
	if err != nil {
		return nil, errf(apiv1.CodeBadRequest, "the envelope is not a DSSE envelope of an in-toto statement: %s", err.Error())
	}
	st, err := signing.ParseStatement(payload)
	if err != nil {
		return nil, errf(apiv1.CodeBadRequest, "the envelope's statement is not an arcagent package statement: %s", err.Error())
	}
	p := st.Package()
	sum := sha256.Sum256(req.Package)
	got := hex.EncodeToString(sum[:])
	if st.SHA256() != got {
		return nil, errf(apiv1.CodeBadRequest, "the signature is for other bytes: its statement names %s with sha256 %s, the uploaded package has sha256 %s; sign this package again", p.FileName(), st.SHA256(), got)
	}
	if st.Predicate.Size != int64(len(req.Package)) {
		return nil, errf(apiv1.CodeBadRequest, "the signature is for other bytes: its statement names %s of %d bytes, the uploaded package has %d bytes; sign this package again", p.FileName(), st.Predicate.Size, len(req.Package))
	}
	kind := store.KindExtension
	if st.Kind() == signing.KindGuestConfig {
		kind = store.KindGuestConfig
		if len(req.Package) > maxGuestConfigPackage {
			return nil, errf(apiv1.CodeTooLarge, "the guest configuration package is %d bytes; machines accept at most %d", len(req.Package), maxGuestConfigPackage)
		}
		if err := checkGuestConfigZip(req.Package); err != nil {
			return nil, err
		}
	} else if err := checkPackageZip(req.Package); err != nil {
		return nil, err
	}
	keyID := env.Signatures[0].KeyID
	if err := checkText("envelope.signatures[0].keyid", keyID, 256, false); err != nil {
		return nil, err
	}
	return &publication{kind: kind, pkg: p, sha256: got, size: int64(len(req.Package)), keyID: keyID, envelope: envBytes}, nil
}

// checkGuestConfigZip checks that data is a zip archive with a non-empty
// guestconfig.yaml at its root within the machine's document limit. The
// document itself is parsed, and the archive extracted, only on the
// machine (the control plane may not import agent/guestconfig).
func checkGuestConfigZip(data []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return errf(apiv1.CodeBadRequest, "the package is not a zip archive (%s): a guest configuration package is a zip with guestconfig.yaml at its root", err.Error())
	}
	var df *zip.File
	for _, f := range zr.File {
		if f.Name == handlerManifestName {
			return errf(apiv1.CodeBadRequest, "the package holds %s but is signed as a guest configuration package: sign it as an extension package (`arcagent package sign`)", handlerManifestName)
		}
		if f.Name == guestConfigDocumentName && df == nil {
			df = f
		}
	}
	if df == nil {
		return errf(apiv1.CodeBadRequest, "the package has no %s at its root: it is not a guest configuration package", guestConfigDocumentName)
	}
	if df.UncompressedSize64 > maxGuestConfigDocument {
		return errf(apiv1.CodeBadRequest, "the package's %s is larger than %d bytes", guestConfigDocumentName, maxGuestConfigDocument)
	}
	rc, err := df.Open()
	if err != nil {
		return errf(apiv1.CodeBadRequest, "the package's %s cannot be read: %s", guestConfigDocumentName, err.Error())
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxGuestConfigDocument+1))
	if err != nil || len(b) > maxGuestConfigDocument {
		return errf(apiv1.CodeBadRequest, "the package's %s cannot be read (damaged archive?)", guestConfigDocumentName)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return errf(apiv1.CodeBadRequest, "the package's %s is empty", guestConfigDocumentName)
	}
	return nil
}

// checkPackageZip checks that data is a zip archive with a
// HandlerManifest.json at its root that is a JSON array holding one object
// with a "handlerManifest" object. The control plane may not import the
// agent's manifest parser (internal/deptest), so the full manifest check,
// and safe extraction, happen on the machine.
func checkPackageZip(data []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return errf(apiv1.CodeBadRequest, "the package is not a zip archive (%s): build it with `arcagent package build`", err.Error())
	}
	var mf *zip.File
	for _, f := range zr.File {
		if f.Name == handlerManifestName {
			mf = f
			break
		}
	}
	if mf == nil {
		for _, f := range zr.File {
			if f.Name == guestConfigDocumentName {
				return errf(apiv1.CodeBadRequest, "the package holds %s but is signed as an extension package: sign it as a guest configuration package (signing kind guestconfig), and publish it with `arcagent fleet guestconfig publish`", guestConfigDocumentName)
			}
		}
		return errf(apiv1.CodeBadRequest, "the package has no %s at its root: it is not an extension package", handlerManifestName)
	}
	if mf.UncompressedSize64 > maxManifest {
		return errf(apiv1.CodeBadRequest, "the package's %s is larger than %d bytes", handlerManifestName, maxManifest)
	}
	rc, err := mf.Open()
	if err != nil {
		return errf(apiv1.CodeBadRequest, "the package's %s cannot be read: %s", handlerManifestName, err.Error())
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
	if err != nil || len(b) > maxManifest {
		return errf(apiv1.CodeBadRequest, "the package's %s cannot be read (damaged archive?)", handlerManifestName)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	var handlers []map[string]json.RawMessage
	if err := json.Unmarshal(b, &handlers); err != nil || len(handlers) != 1 {
		return errf(apiv1.CodeBadRequest, "the package's %s must be a JSON array holding one handler object", handlerManifestName)
	}
	hm := bytes.TrimSpace(handlers[0]["handlerManifest"])
	if len(hm) == 0 || hm[0] != '{' {
		return errf(apiv1.CodeBadRequest, "the package's %s has no \"handlerManifest\" object", handlerManifestName)
	}
	return nil
}

func toPackageInfo(p store.Package) apiv1.PackageInfo {
	kind := p.Kind
	if kind == "" {
		kind = store.KindExtension
	}
	return apiv1.PackageInfo{
		Kind: kind, Publisher: p.Publisher, Type: p.Type, Version: p.Version, FileName: signing.Package{Publisher: p.Publisher, Type: p.Type, Version: p.Version}.FileName(),
		SHA256: p.SHA256, Size: p.Size, KeyID: p.KeyID, PublishedAt: p.PublishedAt, PublishedBy: p.PublishedBy,
	}
}

// packageFile is where a data directory of a server before the package
// bytes moved into the database kept a package's zip (or, with sig, its
// envelope): such files are imported at start (ImportPackageFiles).
func packageFile(dataDir, sha string, sig bool) string {
	name := sha + ".zip"
	if sig {
		name = sha + signing.SignatureSuffix
	}
	return filepath.Join(dataDir, PackagesDir, name)
}

func (s *Server) handlePublishPackage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(rbac.PackagesWrite, rbac.TenantScope); err != nil {
		return err
	}
	var req apiv1.PublishPackageRequest
	if err := decodeBody(w, r, maxPublishBody, &req); err != nil {
		return err
	}
	pub, err := validatePublish(&req)
	if err != nil {
		return err
	}
	ctx := r.Context()
	name := pub.pkg.Name()
	// The row, the envelope and the bytes are stored in one transaction
	// whose unique keys (name, digest) decide between concurrent
	// publishes, through this replica or any other: the loser finds the
	// winner's row on its second pass and answers as for an existing one.
	for attempt := 0; ; attempt++ {
		if done, err := s.publishedAlready(ctx, w, pub); done || err != nil {
			return err
		}
		row := store.Package{Kind: pub.kind, Publisher: pub.pkg.Publisher, Type: pub.pkg.Type, Version: pub.pkg.Version, SHA256: pub.sha256, Size: pub.size, KeyID: pub.keyID, PublishedAt: s.now().UTC(), PublishedBy: p.name}
		err := s.st.CreatePackageWithBlob(ctx, row, pub.envelope, bytes.NewReader(req.Package))
		if errors.Is(err, store.ErrConflict) && attempt == 0 {
			continue
		}
		if err != nil {
			return storeErr(err, "package "+name)
		}
		s.log.Info("package published", "package", name, "sha256", pub.sha256, "size", pub.size, "principal", p.name)
		writeJSON(w, http.StatusCreated, toPackageInfo(row))
		return nil
	}
}

// publishedAlready answers a publish whose name or bytes are published
// already: 200 for the same bytes with the same signature (idempotent),
// 409 otherwise. done is false when neither is taken.
func (s *Server) publishedAlready(ctx context.Context, w http.ResponseWriter, pub *publication) (done bool, err error) {
	name := pub.pkg.Name()
	if old, err := s.st.PackageByName(ctx, pub.pkg.Publisher, pub.pkg.Type, pub.pkg.Version); err == nil {
		if old.SHA256 != pub.sha256 {
			return true, errf(apiv1.CodeConflict, "%s is already published with sha256 %s; the upload has sha256 %s. A published version is never replaced: publish the change under a new version", name, old.SHA256, pub.sha256)
		}
		// Same bytes: idempotent only with the same signature, or the
		// caller would believe machines get an envelope they never see.
		stored, err := s.storedEnvelope(ctx, old.SHA256)
		if err != nil {
			return true, fmt.Errorf("read the stored envelope of %s: %w", name, err)
		}
		if !sameJSON(stored, pub.envelope) {
			return true, errf(apiv1.CodeConflict, "%s is already published with these bytes (sha256 %s) but another signature (key id %q); a published package is never re-signed: publish a new version signed as you want it", name, old.SHA256, old.KeyID)
		}
		writeJSON(w, http.StatusOK, toPackageInfo(old))
		return true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return true, err
	}
	if old, err := s.st.PackageBySHA256(ctx, pub.sha256); err == nil {
		return true, errf(apiv1.CodeConflict, "these bytes (sha256 %s) are already published as %s.%s-%s; one package file has one name", pub.sha256, old.Publisher, old.Type, old.Version)
	} else if !errors.Is(err, store.ErrNotFound) {
		return true, err
	}
	return false, nil
}

// storedEnvelope is the signature envelope of a published package: from
// the database, or from the data directory's file for a package that a
// server before the bytes moved into the database published and that
// could not be imported.
func (s *Server) storedEnvelope(ctx context.Context, sha string) ([]byte, error) {
	env, err := s.st.PackageEnvelope(ctx, sha)
	if !errors.Is(err, store.ErrNotFound) || s.dataDir == "" {
		return env, err
	}
	f, err := os.Open(packageFile(s.dataDir, sha, true))
	if err != nil {
		return nil, fmt.Errorf("the signature of package %s is neither in the database nor in %s: %w", sha, PackagesDir, err)
	}
	defer f.Close()
	env, err = io.ReadAll(io.LimitReader(f, maxEnvelope+1))
	if err == nil && len(env) > maxEnvelope {
		err = fmt.Errorf("the signature file of package %s is larger than %d bytes", sha, maxEnvelope)
	}
	return env, err
}

func (s *Server) handleListPackages(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(rbac.PackagesRead, rbac.TenantScope); err != nil {
		return err
	}
	q := r.URL.Query()
	pub, typ := q.Get("publisher"), q.Get("type")
	if err := checkText("publisher", pub, 128, false); err != nil {
		return err
	}
	if err := checkText("type", typ, 64, false); err != nil {
		return err
	}
	kind := q.Get("kind")
	switch kind {
	case "", store.KindExtension, store.KindGuestConfig:
	default:
		return errf(apiv1.CodeBadRequest, "kind %q is not a package kind: use %s or %s", kind, store.KindExtension, store.KindGuestConfig)
	}
	ps, err := s.st.ListPackages(r.Context(), pub, typ, kind)
	if err != nil {
		return err
	}
	out := apiv1.List[apiv1.PackageInfo]{Value: []apiv1.PackageInfo{}}
	for _, x := range ps {
		out.Value = append(out.Value, toPackageInfo(x))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// sameJSON reports whether two JSON texts are equal but for whitespace.
func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// isSHA256 reports whether v is a lowercase hex SHA-256.
func isSHA256(v string) bool {
	if len(v) != 64 {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil && strings.ToLower(v) == v
}

// assignedPackage returns the package row of digest sha if the machine's
// current desired state names it (an extension or a guest configuration
// assignment, its own or its resource group's); a machine downloads only
// what it is assigned (least privilege), and anything else is 404.
func (s *Server) assignedPackage(r *http.Request, id, sha string) (store.Package, error) {
	notAssigned := errf(apiv1.CodeNotFound, "package %s is not assigned to machine %s", sha, id)
	if !isSHA256(sha) {
		return store.Package{}, errf(apiv1.CodeNotFound, "%q is not a package digest (64 lowercase hex digits)", sha)
	}
	m, err := s.st.Machine(r.Context(), id)
	if err != nil {
		return store.Package{}, storeErr(err, "machine "+id)
	}
	var ds apiv1.DesiredState
	if err := json.Unmarshal(m.DesiredState, &ds); err != nil {
		return store.Package{}, fmt.Errorf("machine %s has a damaged desired state: %w", id, err)
	}
	found := false
	for _, e := range ds.Extensions {
		if e.PackageSHA256 == sha {
			found = true
			break
		}
	}
	for _, a := range ds.GuestConfigurationAssignments {
		if a.PackageSHA256 == sha {
			found = true
			break
		}
	}
	if !found {
		return store.Package{}, notAssigned
	}
	pkg, err := s.st.PackageBySHA256(r.Context(), sha)
	if errors.Is(err, store.ErrNotFound) {
		return store.Package{}, notAssigned
	}
	return pkg, err
}

func (s *Server) handleDownloadPackage(w http.ResponseWriter, r *http.Request, id string, _ *machineEntry) error {
	return s.servePackageFile(w, r, id, false)
}

func (s *Server) handleDownloadSignature(w http.ResponseWriter, r *http.Request, id string, _ *machineEntry) error {
	return s.servePackageFile(w, r, id, true)
}

func (s *Server) servePackageFile(w http.ResponseWriter, r *http.Request, id string, sig bool) error {
	sha := r.PathValue("sha256")
	pkg, err := s.assignedPackage(r, id, sha)
	if err != nil {
		return err
	}
	ctx := r.Context()
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	if sig {
		env, err := s.storedEnvelope(ctx, sha)
		if err != nil {
			return err
		}
		h.Set("Content-Type", "application/json")
		h.Set("ETag", `"`+sha+`.sig"`)
		http.ServeContent(w, r, "", pkg.PublishedAt, bytes.NewReader(env))
		return nil
	}
	body, closeBody, err := s.packageBytes(ctx, pkg)
	if err != nil {
		return err
	}
	defer closeBody()
	h.Set("Content-Type", "application/zip")
	h.Set("ETag", `"`+sha+`"`)
	h.Set("Content-Disposition", "attachment; filename=\""+toPackageInfo(pkg).FileName+"\"")
	h.Set("Digest", "sha-256="+base64Std(sha))
	// ServeContent sets Content-Length and answers Range and If-None-Match.
	rd := &errReader{r: body}
	http.ServeContent(w, r, "", pkg.PublishedAt, rd)
	if rd.err != nil && !errors.Is(rd.err, ctx.Err()) {
		// Part of the package may be sent: break the response, so that
		// the machine sees a failed download, never a short package.
		s.log.Error("a package download failed while being sent", "sha256", sha, "machine", id, "error", rd.err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// packageBytes opens the bytes of a published package: from the database
// (each chunk checked against its digest as it is read), or, for a
// package published before the bytes moved into the database and not
// imported, from the data directory's file (checked whole first). The
// first chunk is read here, so that a damaged package of one chunk (most
// are) is answered with an error before any header is sent.
func (s *Server) packageBytes(ctx context.Context, pkg store.Package) (io.ReadSeeker, func(), error) {
	b, err := s.st.OpenPackageBlob(ctx, pkg.SHA256)
	if err == nil {
		if b.Size() != pkg.Size {
			return nil, nil, fmt.Errorf("the stored package %s is %d bytes, the repository says %d: %w", pkg.SHA256, b.Size(), pkg.Size, store.ErrBlobCorrupt)
		}
		if _, err := b.Read(nil); err != nil {
			return nil, nil, err
		}
		return b, func() {}, nil
	}
	if !errors.Is(err, store.ErrNotFound) || s.dataDir == "" {
		return nil, nil, err
	}
	f, err := os.Open(packageFile(s.dataDir, pkg.SHA256, false))
	if err != nil {
		return nil, nil, fmt.Errorf("the bytes of package %s are neither in the database nor in %s: %w", pkg.SHA256, PackagesDir, err)
	}
	if err := checkPackageFile(f, pkg); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// checkPackageFile checks that f holds the bytes of pkg and rewinds it.
func checkPackageFile(f *os.File, pkg store.Package) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("inspect the stored package %s: %w", pkg.SHA256, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != pkg.Size {
		return fmt.Errorf("the stored package %s is %d bytes, the repository says %d: %w", pkg.SHA256, fi.Size(), pkg.Size, store.ErrBlobCorrupt)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("read the stored package %s: %w", pkg.SHA256, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != pkg.SHA256 {
		return fmt.Errorf("the stored package file %s: %w", f.Name(), store.ErrBlobCorrupt)
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// errReader remembers the first read error of r (http.ServeContent does
// not report it).
type errReader struct {
	r   io.ReadSeeker
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

func (e *errReader) Seek(off int64, whence int) (int64, error) { return e.r.Seek(off, whence) }

// base64Std is the standard base64 of a hex digest, as the Digest header
// (RFC 3230) carries it.
func base64Std(hexDigest string) string {
	b, _ := hex.DecodeString(hexDigest)
	return base64.StdEncoding.EncodeToString(b)
}
