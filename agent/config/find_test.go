package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/errcode"
)

// An unknown property near a known one is answered with "did you mean";
// one far from every name lists the known names only.
func TestFindSuggests(t *testing.T) {
	for _, c := range []struct {
		name, want string
	}{
		{"incomingconnection.enabled", "did you mean incomingconnections.enabled?"},
		{"extensions.alowlist", "did you mean extensions.allowlist?"},
		{"Proxy.Ulr", "did you mean proxy.url?"},
	} {
		_, err := Find(c.name)
		var ce *errcode.Error
		if !errors.As(err, &ce) || ce.Code != errcode.UnknownProperty || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Find(%q) = %v, want %s with %q", c.name, err, errcode.UnknownProperty, c.want)
		}
	}
	_, err := Find("colour.scheme")
	if err == nil || strings.Contains(err.Error(), "did you mean") || !strings.Contains(err.Error(), "proxy.url") {
		t.Errorf("Find of a name far from every property: %v", err)
	}
	if p, err := Find("PROXY.URL"); err != nil || p.Name != "proxy.url" {
		t.Errorf("Find is case-insensitive: %v %v", p, err)
	}
}
