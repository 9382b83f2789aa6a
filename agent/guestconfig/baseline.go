package guestconfig

import (
	_ "embed"
	"sync"
)

//go:embed baseline/linux-baseline.yaml
var baselineYAML []byte

var (
	baselineOnce sync.Once
	baselineDoc  *Document
	baselineErr  error
)

// BaselineYAML is the built-in Linux security baseline document, as shipped.
func BaselineYAML() []byte { return baselineYAML }

// Baseline is the built-in Linux security baseline, parsed. It is not a
// signed package: it may hold no exec resource, and compiles with
// CompileContext{} (Signed false).
func Baseline() (*Document, error) {
	baselineOnce.Do(func() { baselineDoc, baselineErr = Parse("builtin:linux-baseline.yaml", baselineYAML) })
	return baselineDoc, baselineErr
}
