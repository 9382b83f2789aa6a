package controlplane

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/internal/safetext"
	"github.com/arcagent/arcagent/internal/strictjson"
	"github.com/arcagent/arcagent/reports"
)

// Uploaded audit reports (POST /v1/machines/{id}/audits).
const (
	// MaxAuditBody bounds an uploaded audit report: 8 MiB holds a host
	// audit of every built-in rule many times over.
	MaxAuditBody = 8 << 20
	// DefaultAuditHistory is how many reports of one machine and profile
	// the server keeps when Config.AuditHistory is 0.
	DefaultAuditHistory = 20

	maxAuditResults    = 50000
	maxAuditRules      = 10000
	maxAuditText       = 64 << 10 // one message, title or remediation in an upload
	maxFindingMessage  = 8 << 10  // the stored message of one failing rule
	maxAuditResource   = 4096     // a result's resource (a path, a unit name)
	maxAuditClockAhead = time.Hour
)

// ParsedAudit is what the server keeps of an uploaded report.
type ParsedAudit struct {
	Report   *reports.Report
	Profile  string               // the report's profiles, lower case, sorted, joined with ","; "all" when none
	Findings []store.AuditFinding // one per failing rule (status fail), in the report's order
}

// ParseAuditUpload validates an uploaded JSON audit report (the format of
// `arcagent audit -o json`, schemaVersion reports.SchemaVersion) and
// extracts its failing rules. Only status "fail" counts as failing, as in
// the audit's exit code 1: "error" (could not be evaluated), "waived",
// "not_applicable" and "pass" do not. Properties this version does not
// know are ignored (a newer agent's additions); duplicate keys, a
// different schemaVersion, an unknown status or severity, a failing
// result of a rule the report does not describe, a planned-configuration
// report and a start time more than an hour ahead of now are refused.
// Errors are *apiError (400) worded for the uploader.
func ParseAuditUpload(data []byte, now time.Time) (*ParsedAudit, error) {
	bad := func(format string, args ...any) error {
		return errf(apiv1.CodeBadRequest, "the audit report is refused: "+format, args...)
	}
	if !utf8.Valid(data) {
		// encoding/json lets invalid bytes pass inside strings; the
		// stored document must be text either store keeps as it is.
		return nil, bad("it is not UTF-8 text: send the JSON report as `arcagent audit -o json` writes it")
	}
	var rep reports.Report
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&rep); err != nil {
		return nil, bad("it is not an arcagent JSON report (`arcagent audit -o json`): %s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("it has data after the JSON report: send exactly one report")
	}
	if err := strictjson.Check(data, &rep); err != nil {
		return nil, bad("%s", err.Error())
	}
	switch {
	case rep.SchemaVersion == 0:
		return nil, bad("schemaVersion is missing: send the JSON report of `arcagent audit -o json`")
	case rep.SchemaVersion > reports.SchemaVersion:
		return nil, bad("its schemaVersion %d is newer than this arcserver understands (%d): upgrade arcserver", rep.SchemaVersion, reports.SchemaVersion)
	case rep.SchemaVersion != reports.SchemaVersion:
		return nil, bad("its schemaVersion %d is not %d", rep.SchemaVersion, reports.SchemaVersion)
	}
	if err := checkText("tool.name", rep.Tool.Name, 64, true); err != nil {
		return nil, bad("%s", err.(*apiError).msg)
	}
	if rep.StartedAt.IsZero() {
		return nil, bad("startedAt is missing")
	}
	if rep.StartedAt.After(now.Add(maxAuditClockAhead)) {
		return nil, bad("startedAt %s is more than an hour ahead of the server's clock: check the machine's clock", rep.StartedAt.UTC().Format(time.RFC3339))
	}
	switch rep.Target.Kind {
	case reports.TargetHost, reports.TargetRoot:
	case reports.TargetPlanned:
		return nil, bad("it audits a planned configuration, not this machine: upload an audit of the machine itself")
	default:
		return nil, bad("target.kind %q is not host or root", rep.Target.Kind)
	}
	if len(rep.Results) > maxAuditResults || len(rep.Rules) > maxAuditRules {
		return nil, bad("it has %d results and %d rules; at most %d and %d are accepted", len(rep.Results), len(rep.Rules), maxAuditResults, maxAuditRules)
	}
	profile, err := auditProfile(rep.Profiles)
	if err != nil {
		return nil, bad("%s", err.Error())
	}
	rules := make(map[string]reports.Rule, len(rep.Rules))
	for i, ru := range rep.Rules {
		f := "rules[" + strconv.Itoa(i) + "]."
		if err := checkText(f+"id", ru.ID, 128, true); err != nil {
			return nil, bad("%s", err.(*apiError).msg)
		}
		if ru.Severity.Rank() < 0 {
			return nil, bad("%sseverity %q is not one of critical, high, medium, low, info", f, ru.Severity)
		}
		for field, v := range map[string]string{"title": ru.Title, "remediation": ru.Remediation} {
			if err := checkMessage(f+field, v, maxAuditText); err != nil {
				return nil, bad("%s", err.(*apiError).msg)
			}
		}
		rules[strings.ToLower(ru.ID)] = ru
	}
	type failing struct {
		res  reports.Result
		msgs []string
	}
	var order []string
	byRule := map[string]*failing{}
	for i, res := range rep.Results {
		f := "results[" + strconv.Itoa(i) + "]."
		if err := checkText(f+"ruleId", res.RuleID, 128, true); err != nil {
			return nil, bad("%s", err.(*apiError).msg)
		}
		if !slices.Contains(reports.Statuses, res.Status) {
			return nil, bad("%sstatus %q is not one of fail, error, waived, not_applicable, pass", f, res.Status)
		}
		if res.Severity.Rank() < 0 {
			return nil, bad("%sseverity %q is not one of critical, high, medium, low, info", f, res.Severity)
		}
		// The message quotes what the host holds (a value from a file a
		// local user may write): escaped, not refused, like the resource
		// below, so that nobody on the host can stop its audit upload.
		if len(res.Message) > maxAuditText {
			return nil, bad("%smessage is %d bytes long; at most %d are allowed", f, len(res.Message), maxAuditText)
		}
		// The resource joins the stored message. It names what the host
		// holds (a file a local user may have named with escape codes or
		// a line break): escaped, not refused, so that the audit of that
		// host is still kept.
		if len(res.Resource) > maxAuditResource {
			return nil, bad("%sresource is %d bytes long; at most %d are allowed", f, len(res.Resource), maxAuditResource)
		}
		if res.Status != reports.StatusFail {
			continue
		}
		key := strings.ToLower(res.RuleID)
		if _, ok := rules[key]; !ok {
			return nil, bad("%sruleId %q fails but the report's rules do not describe it", f, res.RuleID)
		}
		fl := byRule[key]
		if fl == nil {
			fl = &failing{res: res}
			byRule[key] = fl
			order = append(order, key)
		} else if res.Severity.Rank() > fl.res.Severity.Rank() {
			fl.res.Severity = res.Severity
		}
		msg := safetext.Text(res.Message)
		if res.Resource != "" && !strings.Contains(res.Message, res.Resource) {
			msg = safetext.Line(res.Resource) + ": " + msg
		}
		fl.msgs = append(fl.msgs, msg)
	}
	out := &ParsedAudit{Report: &rep, Profile: profile}
	for _, key := range order {
		fl := byRule[key]
		ru := rules[key]
		out.Findings = append(out.Findings, store.AuditFinding{
			RuleID: ru.ID, Severity: string(fl.res.Severity), Title: ru.Title, Remediation: ru.Remediation,
			Message: joinMessages(fl.msgs), ReportedAt: rep.StartedAt,
		})
	}
	return out, nil
}

// jsonProblem words a decoding error without echoing the body.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s must be %s, not %s", cmp.Or(typ.Field, "(top level)"), typ.Type, typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the body is empty or cut short"
	}
	return "it cannot be decoded"
}

// auditProfile is the profile key of a report's profiles.
func auditProfile(ps []string) (string, error) {
	var keys []string
	for _, p := range ps {
		p = strings.ToLower(strings.TrimSpace(p))
		if err := checkName("profiles[]", p, 64); err != nil {
			return "", errors.New(err.(*apiError).msg)
		}
		if !slices.Contains(keys, p) {
			keys = append(keys, p)
		}
	}
	if len(keys) == 0 {
		return "all", nil
	}
	if len(keys) > 16 {
		return "", fmt.Errorf("it names %d profiles; at most 16 are accepted", len(keys))
	}
	slices.Sort(keys)
	return strings.Join(keys, ","), nil
}

// joinMessages is the stored message of a rule failing on one or more
// resources: one line each, bounded.
func joinMessages(msgs []string) string {
	var b strings.Builder
	for i, m := range msgs {
		if b.Len()+len(m)+1 > maxFindingMessage {
			fmt.Fprintf(&b, "\n… and %d more", len(msgs)-i)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(m)
	}
	return b.String()
}

func toAuditInfo(r store.AuditReport) apiv1.AuditReportInfo {
	return apiv1.AuditReportInfo{ID: r.ID, MachineID: r.MachineID, Profile: r.Profile, CreatedAt: r.CreatedAt, ReceivedAt: r.ReceivedAt, Failed: r.Failed}
}

// handleUploadAudit stores a machine's audit report (machine-authenticated).
func (s *Server) handleUploadAudit(w http.ResponseWriter, r *http.Request, id string, _ *machineEntry) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return errf(apiv1.CodeUnsupportedMedia, "Content-Type %q is not accepted: send the JSON report as application/json", ct)
		}
	}
	if r.ContentLength > MaxAuditBody {
		return errf(apiv1.CodeTooLarge, "the audit report is %d bytes; the limit is %d (8 MiB)", r.ContentLength, MaxAuditBody)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAuditBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errf(apiv1.CodeTooLarge, "the audit report is larger than the limit of %d bytes (8 MiB)", MaxAuditBody)
		}
		return errf(apiv1.CodeBadRequest, "the request body could not be read")
	}
	now := s.now().UTC()
	pa, err := ParseAuditUpload(data, now)
	if err != nil {
		return err
	}
	ar := store.AuditReport{ID: newUUID(), MachineID: strings.ToLower(id), Profile: pa.Profile, CreatedAt: pa.Report.StartedAt.UTC(), ReceivedAt: now, Failed: len(pa.Findings), Doc: data}
	if err := s.st.AddAuditReport(r.Context(), ar, pa.Findings, s.auditHistory); err != nil {
		return storeErr(err, "machine "+id)
	}
	s.log.Info("audit report stored", "machine", ar.MachineID, "report", ar.ID, "profile", ar.Profile, "failed", ar.Failed)
	writeJSON(w, http.StatusCreated, toAuditInfo(ar))
	return nil
}

// handleAuditFindings lists the failing rules of the latest reports of the
// machines the caller may read.
func (s *Server) handleAuditFindings(w http.ResponseWriter, r *http.Request, p *principal) error {
	sub, rg, err := listScope(r, p, rbac.MachinesRead)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.AuditFindingFilter{SubscriptionID: sub, ResourceGroup: rg, RuleID: q.Get("rule"), Severity: strings.ToLower(q.Get("severity")), Profile: strings.ToLower(q.Get("profile"))}
	if err := checkText("rule", f.RuleID, 128, false); err != nil {
		return err
	}
	if f.Severity != "" {
		if _, ok := reports.ParseSeverity(f.Severity); !ok {
			return errf(apiv1.CodeBadRequest, "severity %q is not one of critical, high, medium, low, info", q.Get("severity"))
		}
	}
	if err := checkText("profile", f.Profile, 256, false); err != nil {
		return err
	}
	fs, err := s.st.LatestAuditFindings(r.Context(), f)
	if err != nil {
		return err
	}
	out := apiv1.List[apiv1.AuditFinding]{Value: []apiv1.AuditFinding{}}
	for _, a := range fs {
		if p.can(rbac.MachinesRead, a.ResourceID) {
			out.Value = append(out.Value, apiv1.AuditFinding{
				MachineID: a.MachineID, ResourceID: a.ResourceID, MachineName: a.MachineName, SubscriptionID: a.SubscriptionID, ResourceGroup: a.ResourceGroup,
				Profile: a.Profile, RuleID: a.RuleID, Severity: a.Severity, Title: a.Title, Message: a.Message, Remediation: a.Remediation, ReportedAt: a.ReportedAt,
			})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleMachineAudits lists a machine's uploaded reports, newest first.
func (s *Server) handleMachineAudits(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.loadMachine(r, p, rbac.MachinesRead)
	if err != nil {
		return err
	}
	profile := strings.ToLower(r.URL.Query().Get("profile"))
	if err := checkText("profile", profile, 256, false); err != nil {
		return err
	}
	rs, err := s.st.AuditReports(r.Context(), m.ID, profile, 0)
	if err != nil {
		return err
	}
	out := apiv1.List[apiv1.AuditReportInfo]{Value: []apiv1.AuditReportInfo{}}
	for _, a := range rs {
		out.Value = append(out.Value, toAuditInfo(a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleMachineAuditReport serves one stored report as uploaded.
func (s *Server) handleMachineAuditReport(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.loadMachine(r, p, rbac.MachinesRead)
	if err != nil {
		return err
	}
	rid := r.PathValue("reportId")
	missing := errf(apiv1.CodeNotFound, "audit report %q of machine %s does not exist: list them with GET /v1/machines/%s/audits", rid, m.ID, m.ID)
	if !isUUID(rid) {
		return missing
	}
	a, err := s.st.AuditReport(r.Context(), rid)
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.MachineID != m.ID) {
		return missing
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.Doc)
	return nil
}
