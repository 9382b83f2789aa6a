package guestconfig

import (
	"strings"
	"testing"
)

// FuzzKeyValue checks the keyvalue parser: scanning never panics, a file
// renders back byte-identical, every value span is what was parsed, and
// setting a value makes it the effective one.
func FuzzKeyValue(f *testing.F) {
	f.Add([]byte(weakSSHD), "PermitRootLogin", "no", false, true)
	f.Add([]byte(weakSSHD), "MaxAuthTries", "4", false, true)
	f.Add([]byte("PASS_MAX_DAYS\t99999\nPASS_MAX_DAYS 30\n"), "PASS_MAX_DAYS", "365", false, false)
	f.Add([]byte("GRUB_TIMEOUT=\"5\"\n; c\n"), "GRUB_TIMEOUT", "0", true, false)
	f.Add([]byte("net.ipv4.ip_forward = 1\r\nkernel.x=\n"), "net.ipv4.ip_forward", "0", true, false)
	f.Add([]byte("Banner\nKey = v\n\n\n"), "Banner", "/etc/issue", false, true)
	f.Add([]byte(""), "A", "b", true, true)
	f.Fuzz(func(t *testing.T, data []byte, key, value string, equals, firstWins bool) {
		fm := kvFormat{equals: equals, fold: !equals, firstWins: firstWins}
		if !equals {
			fm.stopAt = "Match"
		}
		sc := scanKV(data, fm, key)
		if got := string(sc.render()); got != string(data) {
			t.Fatalf("render %q, want %q", got, data)
		}
		for _, l := range sc.occ {
			if l.Raw != sc.lines[l.N-1] || l.Raw[l.vs:l.ve] != l.Value || l.ke > l.vs {
				t.Fatalf("bad span %+v", l)
			}
		}
		if checkKVToken("key", key, equals) != nil || strings.EqualFold(key, fm.stopAt) {
			return
		}
		v := normSpace(value)
		if v == "" || strings.ContainsAny(v, "\"'\x00") || checkKVValue(v, equals) != nil {
			return
		}
		out := sc.setValue(fm, key, v)
		again := scanKV(out, fm, key)
		l := again.effective(fm)
		if l == nil || normSpace(l.Value) != v {
			t.Fatalf("after setting %q in %q: %q has effective %+v", v, data, out, l)
		}
	})
}
