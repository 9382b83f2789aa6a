package table

import (
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	header := []string{"NAME", "EMPTY", "STATE", "MESSAGE"}
	rows := [][]string{
		{"web-01", "", "behind", "2 releases behind 1.29.0: update the agent package"},
		{"db-01", "", "unsupported", "older than the support window"},
		{"x\x1b[31m", "", "ok"},
	}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"unlimited drops the empty column", Options{}, `
NAME    STATE        MESSAGE
web-01  behind       2 releases behind 1.29.0: update the agent package
db-01   unsupported  older than the support window
x [31m  ok
`},
		{"narrow wraps the widest column", Options{Width: 50}, `
NAME    STATE        MESSAGE
web-01  behind       2 releases behind 1.29.0:
                     update the agent package
db-01   unsupported  older than the support window
x [31m  ok
`},
		{"keep empty", Options{KeepEmpty: true, Width: 200}, `
NAME    EMPTY  STATE        MESSAGE
web-01         behind       2 releases behind 1.29.0: update the agent package
db-01          unsupported  older than the support window
x [31m         ok
`},
		{"wrap a named column, never below the minimum", Options{Width: 10, Wrap: "MESSAGE"}, `
NAME    STATE        MESSAGE
web-01  behind       2 releases
                     behind
                     1.29.0:
                     update the
                     agent
                     package
db-01   unsupported  older than
                     the support
                     window
x [31m  ok
`},
		{"paint does not move columns", Options{Paint: func(row, col int, c string) string {
			if col == 2 {
				return "<" + c + ">"
			}
			return c
		}}, `
NAME    STATE        MESSAGE
web-01  <behind>       2 releases behind 1.29.0: update the agent package
db-01   <unsupported>  older than the support window
x [31m  <ok>
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := Render(&b, header, rows, tt.o); err != nil {
				t.Fatal(err)
			}
			if got := "\n" + b.String(); got != tt.want {
				t.Errorf("got:%s\nwant:%s", got, tt.want)
			}
			if tt.o.Width >= 50 {
				for _, l := range strings.Split(b.String(), "\n") {
					if len(l) > tt.o.Width {
						t.Errorf("line wider than %d: %q", tt.o.Width, l)
					}
				}
			}
		})
	}
}

func TestNoHeaderAndEmpty(t *testing.T) {
	var b strings.Builder
	Render(&b, nil, [][]string{{"Name:", "web-01"}, {"Resource id:", "/subscriptions/x"}}, Options{NoHeader: true})
	if b.String() != "Name:         web-01\nResource id:  /subscriptions/x\n" {
		t.Errorf("key-value:\n%s", b.String())
	}
	b.Reset()
	Render(&b, []string{"A", "B"}, nil, Options{})
	if b.String() != "A  B\n" {
		t.Errorf("no rows: %q", b.String())
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		s     string
		width int
		want  []string
	}{
		{"short", 10, []string{"short"}},
		{"one two three", 7, []string{"one two", "three"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"a  b", 0, []string{"a  b"}},
		{"", 3, []string{""}},
		{"héllo wörld", 5, []string{"héllo", "wörld"}},
		{"a.b/c,d.e/f,g", 8, []string{"a.b/c,", "d.e/f,g"}},
	}
	for _, tt := range tests {
		if got := Wrap(tt.s, tt.width); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("Wrap(%q, %d) = %q, want %q", tt.s, tt.width, got, tt.want)
		}
	}
}

func TestWidth(t *testing.T) {
	var b strings.Builder
	t.Setenv("COLUMNS", "")
	if w := Width(&b); w != 0 {
		t.Errorf("pipe without COLUMNS: %d", w)
	}
	t.Setenv("COLUMNS", "97")
	if w := Width(&b); w != 97 {
		t.Errorf("COLUMNS=97: %d", w)
	}
	t.Setenv("COLUMNS", "-3")
	if w := Width(&b); w != 0 {
		t.Errorf("COLUMNS=-3: %d", w)
	}
}
