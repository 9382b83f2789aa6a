package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"incomingconnection.enabled", "incomingconnections.enabled", 1},
		{"Proxy.URL", "proxy.url", 0},
		{"résumé", "resume", 2},
		{"flaw", "lawn", 2},
	} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestClosest(t *testing.T) {
	names := []string{"incomingconnections.enabled", "incomingconnections.ports", "proxy.url", "proxy.bypass", "expires", "justification"}
	for _, c := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"incomingconnection.enabled", "incomingconnections.enabled", true},
		{"proxy.ulr", "proxy.url", true},
		{"expiry", "expires", true},
		{"justifcation", "justification", true},
		{"proxy.url", "", false}, // exact: nothing to suggest
		{"PROXY.URL", "", false}, // case-insensitive exact
		{"colour", "", false},    // nothing close
		{"x", "", false},         // too short to guess
		{"guestconfiguration.enabled", "", false},
	} {
		got, ok := Closest(c.in, names)
		if got != c.want || ok != c.ok {
			t.Errorf("Closest(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	if s := DidYouMean("proxy.ulr", names); s != " (did you mean proxy.url?)" {
		t.Errorf("DidYouMean = %q", s)
	}
	if s := DidYouMean("zzz", names); s != "" {
		t.Errorf("DidYouMean without a match = %q", s)
	}
}
