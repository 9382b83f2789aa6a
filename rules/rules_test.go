package rules

import (
	"testing"
)

func TestBuiltinCompiles(t *testing.T) {
	rs, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(rs); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rules", len(rs))
}
