package config

import (
	"testing"
)

func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"true", "false", "\u201cfalse\u201d", "22, 3389", "A/B,C/D", "Allow/None", "http://p:3128", "monitor", "101", "", ",,,", "a/b,\u2018c/d\u2019"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, p := range Properties() {
			v, _, err := ParseValue(p, raw)
			if err != nil {
				continue
			}
			// Whatever parses must round-trip through its display form.
			again, _, err := ParseValue(p, FormatValue(v))
			if err != nil {
				t.Fatalf("%s: %q parsed to %v, which does not parse again: %v", p.Name, raw, v, err)
			}
			if FormatValue(again) != FormatValue(v) {
				t.Fatalf("%s: %q -> %v -> %v", p.Name, raw, v, again)
			}
		}
	})
}

func FuzzParseFile(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"incomingconnections.enabled": false}`,
		`{"extensions.allowlist": ["A/B", "c/d"], "incomingconnections.ports": [22]}`,
		`{"config.mode": "monitor", "x.y": {"nested": [1, 2]}}`,
		`{"guestconfiguration.agent.cpulimit": 1e2}`, `{"proxy.url": "http://u:p@h:1"}`,
		`{"config.mode": "full", "config.mode": "monitor"}`, `{"x.y": {"a": 1, "a": 2}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _, err := ParseFile("fuzz", data)
		if err != nil {
			return
		}
		out, err := s.Marshal()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, _, err := ParseFile("fuzz", out)
		if err != nil {
			t.Fatalf("re-parse of our own output failed: %v\n%s", err, out)
		}
		out2, _ := back.Marshal()
		if string(out) != string(out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}
