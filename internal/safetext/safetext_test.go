package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLineAndText(t *testing.T) {
	for _, tc := range []struct {
		name, in, line, text string
	}{
		{"plain", "web-01.contoso.com", "web-01.contoso.com", "web-01.contoso.com"},
		{"empty", "", "", ""},
		{"non-ASCII letters stay", "hôte-ü 服务器 ✅", "hôte-ü 服务器 ✅", "hôte-ü 服务器 ✅"},
		{"windows path keeps backslashes", `C:\Program Files\AzureConnectedMachineAgent`, `C:\Program Files\AzureConnectedMachineAgent`, `C:\Program Files\AzureConnectedMachineAgent`},
		{"clear screen", "host\x1b[2J\x1b[H", `host\x1b[2J\x1b[H`, `host\x1b[2J\x1b[H`},
		{"bell", "a\x07b", `a\ab`, `a\ab`},
		{"carriage return", "ok\rFAKE", `ok\rFAKE`, `ok\rFAKE`},
		{"newline and tab", "a\nb\tc", `a\nb\tc`, "a\nb\tc"},
		{"NUL and DEL", "a\x00b\x7f", `a\x00b\x7f`, `a\x00b\x7f`},
		{"C1 CSI", "a\u009b2Jb", `a\u009b2Jb`, `a\u009b2Jb`},
		{"right-to-left override", "evil\u202etxt.exe", `evil\u202etxt.exe`, `evil\u202etxt.exe`},
		{"bidi isolate", "a\u2066b\u2069", `a\u2066b\u2069`, `a\u2066b\u2069`},
		{"zero width space", "ad\u200bmin", `ad\u200bmin`, `ad\u200bmin`},
		{"line separator", "a\u2028b", `a\u2028b`, `a\u2028b`},
		{"invalid UTF-8", "a\xffb\xc3", `a\xffb\xc3`, `a\xffb\xc3`},
		{"BOM", "\ufeffhost", `\ufeffhost`, `\ufeffhost`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Line(tc.in); got != tc.line {
				t.Errorf("Line(%q) = %q, want %q", tc.in, got, tc.line)
			}
			if got := Text(tc.in); got != tc.text {
				t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.text)
			}
		})
	}
}

// checkSafe fails when out holds anything a terminal or a bidi renderer
// would act on.
func checkSafe(t *testing.T, in, out string, keepLines bool) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("%q: output %q is not valid UTF-8", in, out)
	}
	for _, r := range out {
		if r == ' ' || (keepLines && (r == '\n' || r == '\t')) {
			continue
		}
		if unsafe(r, keepLines) {
			t.Fatalf("%q: output %q still holds %U", in, out, r)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "host", "\x1b[2J", "a\rb\nc\td", "\u202e", "\xff\xfe", "ü\u0085\u009b", strings.Repeat("\x07", 3)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		line, text := Line(s), Text(s)
		checkSafe(t, s, line, false)
		checkSafe(t, s, text, true)
		if Line(line) != line || Text(text) != text {
			t.Fatalf("%q: escaping is not stable: %q, %q", s, line, text)
		}
		if strings.ContainsAny(line, "\n\t") {
			t.Fatalf("%q: Line kept a line break or tab: %q", s, line)
		}
	})
}
