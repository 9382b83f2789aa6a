// Package releasefacts is the adapter between the release checker and the
// audit engine: it fills the audit's facts.releases with the currency
// verdicts of package releases, so that package releases never imports the
// audit (nor its CEL rule engine).
package releasefacts

import (
	"context"

	"github.com/arcagent/arcagent/audit"
	"github.com/arcagent/arcagent/releases"
)

// Collector fills the audit engine's facts.releases from a Checker. It
// implements audit.ReleasesCollector.
type Collector struct {
	Checker *releases.Checker
}

var _ audit.ReleasesCollector = (*Collector)(nil)

// CollectReleases evaluates the installed agent and every installed
// extension the source knows. Products the source does not know are left
// out (their rules are not applicable); a source that cannot be read is an
// error, so the rules yield error, never a false pass.
func (c *Collector) CollectReleases(ctx context.Context, f *audit.Facts) (audit.ReleasesFacts, error) {
	out := audit.ReleasesFacts{Section: audit.Section{Available: true}, Extensions: []audit.Currency{}}
	if f.Agent.Installed {
		ix, err := c.Checker.Index(ctx, releases.AgentProduct)
		if err != nil {
			return out, err
		}
		if ix != nil {
			cur := ix.Evaluate(f.Agent.Version)
			if f.Agent.Version == "" {
				cur.Reason = "the installed agent version is unknown"
			}
			out.Agent = &cur
		}
	}
	for _, x := range f.Extensions.Installed {
		if x.Publisher == "" || x.Type == "" {
			continue
		}
		ix, err := c.Checker.Index(ctx, releases.ExtensionProduct(x.Publisher, x.Type))
		if err != nil {
			return out, err
		}
		if ix != nil {
			out.Extensions = append(out.Extensions, ix.Evaluate(x.Version))
		}
	}
	return out, nil
}
