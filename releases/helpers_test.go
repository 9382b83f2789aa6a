package releases

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/errcode"
)

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func isCode(err error, c errcode.Code) bool {
	return errcode.Is(err, c)
}

// wantCode checks that err carries code c and mentions want.
func wantCode(t testing.TB, err error, c errcode.Code, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", c)
	}
	if !isCode(err, c) {
		t.Errorf("error %v: want code %s", err, c)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if i, ok := errcode.Lookup(c); !ok || i.Remedy == "" {
		t.Errorf("code %s has no remedy", c)
	}
}
