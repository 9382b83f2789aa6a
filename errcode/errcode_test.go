package errcode

import (
	"errors"
	"fmt"
	"regexp"
	"testing"
)

func TestRegistry(t *testing.T) {
	re := regexp.MustCompile(`^ARC\d{4}$`)
	for _, i := range All() {
		if !re.MatchString(string(i.Code)) || i.Title == "" || i.Remedy == "" || i.Exit < ExitFindings || i.Exit > ExitFailed {
			t.Errorf("bad registry entry %+v", i)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{New(InvalidValue, "x"), ExitUsage},
		{fmt.Errorf("wrapped: %w", New(PermissionDenied, "x")), ExitFailed},
		{errors.New("plain"), ExitFailed},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	e := Wrap(ConfigCorrupt, errors.New("bad json"), "file %s", "/x")
	if e.Error() != "ARC0015: file /x: bad json" || e.Remedy() == "" {
		t.Errorf("Error() = %q", e.Error())
	}
}
