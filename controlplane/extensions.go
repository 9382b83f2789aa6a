package controlplane

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/sealed"
	"github.com/arcagent/arcagent/signing"
)

// Assignment limits.
const (
	// MaxSettings bounds an extension's public settings (compact JSON).
	MaxSettings = 256 << 10
	// maxExtensionBody is the body of PUT …/extensions/{name}.
	maxExtensionBody = MaxSettings + sealed.MaxPlaintext + 16<<10
	// maxExtensions bounds the extensions assigned to one machine.
	maxExtensions = 200
)

// SettingsKeyFile is the data directory's key for fingerprints of
// protected settings (mode 0600, never in the database or a backup).
const SettingsKeyFile = "protected-settings.key"

// validExtension is a SetExtension request that passed every check.
type validExtension struct {
	pkg       signing.Package
	settings  map[string]any
	protected []byte // compact JSON object, nil if none
}

// validateSetExtension checks the name and body of an assignment: the
// name as other resource names, publisher/type/version as package names
// are checked, settings and protected settings JSON objects within their
// limits. Error messages never quote the protected settings.
func validateSetExtension(name string, req *apiv1.SetExtensionRequest) (*validExtension, error) {
	if err := checkName("extension name", name, 64); err != nil {
		return nil, err
	}
	p := signing.Package{Publisher: req.Publisher, Type: req.Type, Version: req.Version}
	for _, f := range []struct{ field, v string }{{"publisher", p.Publisher}, {"type", p.Type}, {"version", p.Version}} {
		if f.v == "" {
			return nil, errf(apiv1.CodeBadRequest, "%s is required", f.field)
		}
	}
	if err := p.Validate(); err != nil {
		return nil, errf(apiv1.CodeBadRequest, "%s", err.Error())
	}
	v := &validExtension{pkg: p, settings: req.Settings}
	if req.Settings != nil {
		b, err := json.Marshal(req.Settings)
		if err != nil {
			return nil, errf(apiv1.CodeBadRequest, "settings cannot be encoded as JSON: %s", err.Error())
		}
		if len(b) > MaxSettings {
			return nil, errf(apiv1.CodeTooLarge, "settings are %d bytes of JSON; the limit is %d", len(b), MaxSettings)
		}
		if len(req.Settings) == 0 {
			v.settings = nil
		}
	}
	ps := bytes.TrimSpace(req.ProtectedSettings)
	if len(ps) > 0 && string(ps) != "null" {
		if ps[0] != '{' || !json.Valid(ps) {
			return nil, errf(apiv1.CodeBadRequest, "protectedSettings must be a JSON object")
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, ps); err != nil {
			return nil, errf(apiv1.CodeBadRequest, "protectedSettings must be a JSON object")
		}
		if buf.Len() > sealed.MaxPlaintext {
			return nil, errf(apiv1.CodeTooLarge, "protectedSettings are %d bytes of JSON; the limit is %d", buf.Len(), sealed.MaxPlaintext)
		}
		if buf.String() != "{}" {
			v.protected = buf.Bytes()
		}
	}
	return v, nil
}

// desiredPrivate is the server-only data kept beside a desired state.
type desiredPrivate struct {
	// ProtectedSettings maps a lower-cased extension name to a keyed
	// fingerprint (HMAC-SHA256 with the data directory's settings key) of
	// its protected settings, so that assigning the same protected
	// settings again is recognised without keeping them: HPKE sealing is
	// randomised, and a fresh ciphertext would change the ETag.
	ProtectedSettings map[string]string `json:"protectedSettings,omitempty"`
}

// settingsKeyCheck names the store setting that holds the check value of
// the fingerprint key (HMAC of a fixed text under the key). The key itself
// never enters the database or a backup, where it would let whoever holds
// a copy test guesses of protected settings against their fingerprints;
// replicas each hold a copy of the file (as they hold the TLS key), and
// the check value stored once makes a replica with a different key refuse
// rather than fingerprint differently from the others.
const settingsKeyCheck = "protected-settings-key-check"

func settingsKeyCheckValue(k []byte) []byte {
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte("arcserver protected-settings key check v1"))
	return []byte(base64.RawStdEncoding.EncodeToString(mac.Sum(nil)))
}

// settingsKey returns the fingerprint key, creating it on first use, and
// checks it against the one the store's other users (replicas) use.
func (s *Server) settingsKey(ctx context.Context) ([]byte, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.fpKey != nil {
		return s.fpKey, nil
	}
	if s.dataDir == "" {
		// No data directory (tests): a key for this process only.
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		s.fpKey = k
		return k, nil
	}
	p := filepath.Join(s.dataDir, SettingsKeyFile)
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		b = make([]byte, 32)
		_, _ = rand.Read(b)
		if err := atomicfile.WriteFile(p, b, atomicfile.WriteOptions{Mode: 0o600}); err != nil {
			return nil, fmt.Errorf("create %s: %w", p, err)
		}
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", p, err)
	case len(b) != 32:
		return nil, fmt.Errorf("%s is damaged (%d bytes, want 32): remove it (protected settings are then sealed afresh on their next assignment)", p, len(b))
	}
	want := settingsKeyCheckValue(b)
	got, err := s.st.EnsureSetting(ctx, settingsKeyCheck, want, s.now())
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(got, want) {
		return nil, errcode.New(apiv1.CodeSettingsKeyDiffers, "%s is not the protected-settings key the other arcserver replicas of this database use: copy that file from the first replica's data directory (mode 0600) and restart this one", p)
	}
	s.fpKey = b
	return b, nil
}

func (s *Server) fingerprint(ctx context.Context, machineID, name string, plaintext []byte) (string, error) {
	k, err := s.settingsKey(ctx)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(machineID + "\x00" + strings.ToLower(name) + "\x00"))
	mac.Write(plaintext)
	return base64.RawStdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// noteETag updates the cached ETag heartbeats report.
func (s *Server) noteETag(id, etag string) {
	s.mu.RLock()
	e := s.machines[id]
	s.mu.RUnlock()
	if e != nil {
		e.etag.Store(etag)
	}
}

// decodeDesired reads a stored desired state and its private data.
func decodeDesired(cur store.DesiredState) (apiv1.DesiredState, desiredPrivate, error) {
	var ds apiv1.DesiredState
	var priv desiredPrivate
	if err := json.Unmarshal(cur.Doc, &ds); err != nil {
		return ds, priv, fmt.Errorf("the stored desired state is damaged: %w", err)
	}
	if len(cur.Private) > 0 {
		if err := json.Unmarshal(cur.Private, &priv); err != nil {
			return ds, priv, fmt.Errorf("the stored desired state's private data is damaged: %w", err)
		}
	}
	if ds.Extensions == nil {
		ds.Extensions = []apiv1.ExtensionSpec{}
	}
	if ds.GuestConfigurationAssignments == nil {
		ds.GuestConfigurationAssignments = []apiv1.GuestConfigurationAssignment{}
	}
	if priv.ProtectedSettings == nil {
		priv.ProtectedSettings = map[string]string{}
	}
	return ds, priv, nil
}

// encodeDesired is the next stored desired state, or nil when the
// document is unchanged (same bytes, so the same ETag).
func encodeDesired(cur store.DesiredState, ds apiv1.DesiredState, priv desiredPrivate) (*store.DesiredState, error) {
	slices.SortFunc(ds.Extensions, func(a, b apiv1.ExtensionSpec) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	slices.SortFunc(ds.GuestConfigurationAssignments, func(a, b apiv1.GuestConfigurationAssignment) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	doc, err := json.Marshal(ds)
	if err != nil {
		return nil, err
	}
	pb, err := json.Marshal(priv)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(doc, cur.Doc) && bytes.Equal(pb, cur.Private) {
		return nil, nil
	}
	return &store.DesiredState{Doc: doc, ETag: etagOf(doc), Private: pb}, nil
}

func findExtension(ds *apiv1.DesiredState, name string) int {
	return slices.IndexFunc(ds.Extensions, func(e apiv1.ExtensionSpec) bool { return strings.EqualFold(e.Name, name) })
}

func (s *Server) handleSetExtension(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.loadMachine(r, p, rbac.ExtensionsWrite)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	var req apiv1.SetExtensionRequest
	if err := decodeBody(w, r, maxExtensionBody, &req); err != nil {
		return err
	}
	v, err := validateSetExtension(name, &req)
	if err != nil {
		return err
	}
	ctx := r.Context()
	pkg, err := s.st.PackageByName(ctx, v.pkg.Publisher, v.pkg.Type, v.pkg.Version)
	if errors.Is(err, store.ErrNotFound) {
		return errf(apiv1.CodeNotFound, "package %s is not published: publish it first with `arcagent fleet packages publish %s`", v.pkg.Name(), v.pkg.FileName())
	}
	if err != nil {
		return err
	}
	if pkg.Kind == store.KindGuestConfig {
		return errf(apiv1.CodeBadRequest, "%s is a guest configuration package, not an extension: assign it with `arcagent fleet guestconfig assign --package %s.%s --version %s`", v.pkg.Name(), pkg.Publisher, pkg.Type, pkg.Version)
	}
	pub, err := parsePublicKey(m.PublicKeyPEM)
	if err != nil {
		return fmt.Errorf("machine %s has a damaged key in the database: %w", m.ID, err)
	}
	spec := apiv1.ExtensionSpec{
		Name: name, Publisher: pkg.Publisher, Type: pkg.Type, Version: pkg.Version,
		PackageSHA256: pkg.SHA256, PackageSize: pkg.Size, Settings: v.settings,
	}
	var fp string
	if v.protected != nil {
		if fp, err = s.fingerprint(ctx, m.ID, name, v.protected); err != nil {
			return err
		}
	}
	created := false
	var etag string
	err = s.st.UpdateDesiredState(ctx, m.ID, func(cur store.DesiredState) (*store.DesiredState, error) {
		etag = cur.ETag
		ds, priv, err := decodeDesired(cur)
		if err != nil {
			return nil, err
		}
		i := findExtension(&ds, name)
		for _, o := range ds.Extensions {
			// One extension of a kind per machine, as in Azure: two
			// assignments would share one installed tree.
			if !strings.EqualFold(o.Name, name) && strings.EqualFold(o.Publisher, spec.Publisher) && strings.EqualFold(o.Type, spec.Type) {
				return nil, errf(apiv1.CodeConflict, "machine %s already has %s.%s assigned as %q: change that assignment, or remove it first", m.ID, o.Publisher, o.Type, o.Name)
			}
		}
		key := strings.ToLower(name)
		if v.protected != nil {
			if i >= 0 && priv.ProtectedSettings[key] == fp && ds.Extensions[i].Name == name && ds.Extensions[i].ProtectedSettings != "" {
				spec.ProtectedSettings = ds.Extensions[i].ProtectedSettings // same clear text: keep the sealed value
			} else {
				// Seal before anything is stored: the clear text goes
				// nowhere but into HPKE.
				if spec.ProtectedSettings, err = sealed.Seal(pub, m.ID, name, v.protected); err != nil {
					return nil, err
				}
			}
			priv.ProtectedSettings[key] = fp
		} else {
			delete(priv.ProtectedSettings, key)
		}
		if i >= 0 {
			ds.Extensions[i] = spec
		} else {
			if len(ds.Extensions) >= maxExtensions {
				return nil, errf(apiv1.CodeBadRequest, "machine %s already has %d extensions assigned, the most allowed: remove one first", m.ID, maxExtensions)
			}
			ds.Extensions = append(ds.Extensions, spec)
			created = true
		}
		next, err := encodeDesired(cur, ds, priv)
		if next != nil {
			etag = next.ETag
		}
		return next, err
	})
	if err != nil {
		return storeErr(err, "machine "+m.ID)
	}
	s.noteETag(m.ID, etag)
	s.log.Info("extension assigned", "machine", m.ID, "extension", name, "package", v.pkg.Name(), "protected_settings", v.protected != nil, "etag", etag)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	spec.ProtectedSettings = ""
	w.Header().Set("ETag", etag)
	writeJSON(w, status, spec)
	return nil
}

func (s *Server) handleRemoveExtension(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.loadMachine(r, p, rbac.ExtensionsWrite)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	var etag string
	err = s.st.UpdateDesiredState(r.Context(), m.ID, func(cur store.DesiredState) (*store.DesiredState, error) {
		ds, priv, err := decodeDesired(cur)
		if err != nil {
			return nil, err
		}
		i := findExtension(&ds, name)
		if i < 0 {
			return nil, errf(apiv1.CodeNotFound, "extension %q is not assigned to machine %s (see `arcagent fleet extensions list --machine %s`)", name, m.ID, m.Name)
		}
		ds.Extensions = slices.Delete(ds.Extensions, i, i+1)
		delete(priv.ProtectedSettings, strings.ToLower(name))
		next, err := encodeDesired(cur, ds, priv)
		if next != nil {
			etag = next.ETag
		}
		return next, err
	})
	if err != nil {
		return storeErr(err, "machine "+m.ID)
	}
	s.noteETag(m.ID, etag)
	s.log.Info("extension removed", "machine", m.ID, "extension", name, "etag", etag)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// storedStatus decodes the status report m holds (the zero status when it
// never reported).
func storedStatus(m store.Machine) (apiv1.MachineStatus, error) {
	var st apiv1.MachineStatus
	if len(m.Status) > 0 {
		if err := json.Unmarshal(m.Status, &st); err != nil {
			return st, fmt.Errorf("machine %s has a damaged status report: %w", m.ID, err)
		}
	}
	return st, nil
}

func (s *Server) handleListExtensions(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.loadMachine(r, p, rbac.ExtensionsRead)
	if err != nil {
		return err
	}
	ds, _, err := decodeDesired(store.DesiredState{Doc: m.DesiredState})
	if err != nil {
		return err
	}
	st, err := storedStatus(m)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiv1.List[apiv1.ExtensionView]{Value: extensionViews(ds.Extensions, st.Extensions)})
	return nil
}

// extensionViews puts each desired extension next to what the machine
// reported (matched by name, case-insensitively) and summarises the two;
// an extension reported but no longer desired shows Removing. Sorted by
// name; protected settings are never shown.
func extensionViews(desired []apiv1.ExtensionSpec, reported []apiv1.ExtensionStatus) []apiv1.ExtensionView {
	out := []apiv1.ExtensionView{}
	seen := map[string]bool{}
	find := func(name string) *apiv1.ExtensionStatus {
		for i := range reported {
			if strings.EqualFold(reported[i].Name, name) {
				return &reported[i]
			}
		}
		return nil
	}
	for _, d := range desired {
		v := apiv1.ExtensionView{Name: d.Name, HasProtectedSettings: d.ProtectedSettings != ""}
		d.ProtectedSettings = ""
		v.Desired = &d
		seen[strings.ToLower(d.Name)] = true
		rep := find(d.Name)
		v.Reported = rep
		switch {
		case rep == nil:
			v.State, v.Reason = apiv1.ExtensionPending, "the machine has not reported this extension yet"
		case rep.Version != d.Version:
			v.State, v.Reason = apiv1.ExtensionPending, fmt.Sprintf("the machine has not reported version %s yet (it reports %s)", d.Version, orDash(rep.Version))
		case !strings.EqualFold(rep.Publisher, d.Publisher) && rep.Publisher != "" || !strings.EqualFold(rep.Type, d.Type) && rep.Type != "":
			v.State, v.Reason = apiv1.ExtensionPending, fmt.Sprintf("the machine reports %s.%s, not %s.%s", rep.Publisher, rep.Type, d.Publisher, d.Type)
		default:
			v.State, v.Reason = rep.State, rep.Message
			if v.State == "" {
				v.State = apiv1.ExtensionPending
			}
		}
		out = append(out, v)
	}
	for i := range reported {
		rep := &reported[i]
		if seen[strings.ToLower(rep.Name)] {
			continue
		}
		seen[strings.ToLower(rep.Name)] = true
		reason := "no longer assigned; the machine still reports it"
		if rep.State != "" {
			reason += " (" + rep.State + ")"
		}
		out = append(out, apiv1.ExtensionView{Name: rep.Name, Reported: rep, State: apiv1.ExtensionRemoving, Reason: reason})
	}
	slices.SortFunc(out, func(a, b apiv1.ExtensionView) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return out
}

func orDash(s string) string {
	if s == "" {
		return "no version"
	}
	return s
}
