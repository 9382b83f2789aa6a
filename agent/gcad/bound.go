package gcad

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// Bounds of a status report the control plane accepts (a report over any
// of them is refused whole, and would stay pending for ever).
const (
	maxMessage           = 4096
	maxReason            = 4096
	maxEvidence          = 32
	maxEvidenceKey       = 64
	maxEvidenceValue     = 1024
	maxResourcesInReport = 5000
	maxIDLen             = 128
)

// clean makes s printable text of at most max bytes: invalid UTF-8 and
// control characters become '?' (line breaks and tabs are kept when
// lines), and a cut ends in "…".
func clean(s string, max int, lines bool) string {
	ok := utf8.ValidString(s) && len(s) <= max
	if ok {
		for _, r := range s {
			if !unicode.IsPrint(r) && (!lines || (r != '\n' && r != '\t' && r != '\r')) {
				ok = false
				break
			}
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				r = '?'
			}
		}
		if !unicode.IsPrint(r) && (!lines || (r != '\n' && r != '\t' && r != '\r')) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r)+len("…") > max {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// bound fits a status report to what the control plane accepts: long
// texts cut, at most maxEvidence evidence entries (in key order), and at
// most maxResourcesInReport resources in all (the assignments past the
// limit say so in their message).
func bound(gs []apiv1.GuestConfigurationStatus) []apiv1.GuestConfigurationStatus {
	total := 0
	out := make([]apiv1.GuestConfigurationStatus, 0, len(gs))
	for _, g := range gs {
		g.Message = clean(g.Message, maxMessage, true)
		if total+len(g.Resources) > maxResourcesInReport {
			g.Message = clean(g.Message+" (per-resource results left out of this report: too many resources in all; arcagent guestconfig show "+g.Name+" has them)", maxMessage, true)
			g.Resources = nil
		}
		total += len(g.Resources)
		rs := make([]apiv1.GuestConfigurationResourceStatus, 0, len(g.Resources))
		for _, r := range g.Resources {
			r.ID = clean(r.ID, maxIDLen, false)
			r.Reason = clean(r.Reason, maxReason, true)
			if len(r.Evidence) > 0 {
				keys := make([]string, 0, len(r.Evidence))
				for k := range r.Evidence {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				ev := map[string]string{}
				for _, k := range keys {
					if len(ev) == maxEvidence {
						break
					}
					ck := clean(k, maxEvidenceKey, false)
					if strings.TrimSpace(ck) == "" {
						continue
					}
					ev[ck] = clean(r.Evidence[k], maxEvidenceValue, true)
				}
				r.Evidence = ev
			}
			rs = append(rs, r)
		}
		if g.Resources != nil {
			g.Resources = rs
		}
		out = append(out, g)
	}
	return out
}
