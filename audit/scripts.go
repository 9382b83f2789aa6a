package audit

import (
	"regexp"
	"strings"
	"sync"

	"github.com/arcagent/arcagent/agent/config"
)

// KnownScriptExtensions are well-known extensions that run arbitrary
// commands or scripts on the machine (CustomScript and RunCommand kinds).
var KnownScriptExtensions = []string{
	"Microsoft.Compute/CustomScriptExtension",
	"Microsoft.Azure.Extensions/CustomScript",
	"Microsoft.OSTCExtensions/CustomScriptForLinux",
	"Microsoft.CPlat.Core/RunCommandLinux",
	"Microsoft.CPlat.Core/RunCommandHandlerLinux",
	"Microsoft.CPlat.Core/RunCommandHandlerWindows",
	"Microsoft.Compute/RunCommandWindows",
}

// KnownWindowsScriptExtensions are those of a Windows target: the Windows
// Custom Script Extension and the Windows run commands. A Windows audit
// names these, not the Linux ones, in its findings.
var KnownWindowsScriptExtensions = []string{
	"Microsoft.Compute/CustomScriptExtension",
	"Microsoft.CPlat.Core/RunCommandWindows",
	"Microsoft.CPlat.Core/RunCommandHandlerWindows",
	"Microsoft.Compute/RunCommandWindows",
}

var scriptTypeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)(customscript|runcommand)`) })

// IsScriptCapable reports whether an extension type is of the CustomScript
// or RunCommand kind.
func IsScriptCapable(typ string) bool { return scriptTypeRE().MatchString(typ) }

// scriptExtensionsAllowed lists the script-capable extensions the effective
// local lists would let install: the well-known ones plus any allowlist
// entry of that kind.
func scriptExtensionsAllowed(s *config.Settings, windows bool) []string {
	known := KnownScriptExtensions
	if windows {
		known = KnownWindowsScriptExtensions
	}
	cands := append([]string{}, known...)
	for _, e := range s.EffectiveList(config.ExtAllowlist) {
		if _, typ, ok := strings.Cut(e, "/"); ok && IsScriptCapable(typ) && !config.ContainsFold(cands, e) {
			cands = append(cands, e)
		}
	}
	out := []string{}
	for _, name := range cands {
		if s.ExtensionDecision(name).Allowed {
			out = append(out, name)
		}
	}
	return out
}
