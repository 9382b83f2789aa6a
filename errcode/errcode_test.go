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
	if e.Error() != "file /x: bad json" || Format(e) != "ARC0015: file /x: bad json" || e.Remedy() == "" || RemedyOf(e) != e.Remedy() {
		t.Errorf("Error() = %q, Format = %q", e.Error(), Format(e))
	}
}

// codedError is another package's error type with a code (a Coder).
type codedError struct{ c Code }

func (e *codedError) Error() string   { return "coded elsewhere" }
func (e *codedError) ErrorCode() Code { return e.c }

func TestErrorText(t *testing.T) {
	tests := []struct {
		err          error
		text, format string
	}{
		{New(InvalidValue, "bad value %q", "x"), `bad value "x"`, `ARC0011: bad value "x"`},
		{Wrap(WriteFailed, errors.New("disk full"), "write %s", "a"), "write a: disk full", "ARC0019: write a: disk full"},
		{Wrap(WriteFailed, errors.New("disk full"), ""), "disk full", "ARC0019: disk full"},
		{fmt.Errorf("config set: %w", New(MonitorModeLock, "locked")), "config set: locked", "ARC0014: config set: locked"},
		{&codedError{Internal}, "coded elsewhere", "ARC0002: coded elsewhere"},
		{errors.New("plain"), "plain", "plain"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.text {
			t.Errorf("Error() = %q, want %q", got, tt.text)
		}
		if got := Format(tt.err); got != tt.format {
			t.Errorf("Format() = %q, want %q", got, tt.format)
		}
	}
	if Format(nil) != "" {
		t.Error("Format(nil) is not empty")
	}
}

func TestIs(t *testing.T) {
	inner := New(PermissionDenied, "open x")
	outer := fmt.Errorf("load: %w", Wrap(ConfigUnreadable, inner, "read config"))
	joined := errors.Join(errors.New("other"), &codedError{Internal})
	tests := []struct {
		err  error
		code Code
		want bool
	}{
		{outer, ConfigUnreadable, true},
		{outer, PermissionDenied, true}, // a cause's code counts too
		{outer, WriteFailed, false},
		{joined, Internal, true},
		{errors.New("ARC0018: looks coded"), PermissionDenied, false}, // text is never parsed
		{nil, Usage, false},
	}
	for i, tt := range tests {
		if got := Is(tt.err, tt.code); got != tt.want {
			t.Errorf("%d: Is(%v, %s) = %v", i, tt.err, tt.code, got)
		}
		// errors.Is answers the same for *Error chains, with a Code or an
		// *Error as the target.
		if _, other := tt.err.(interface{ Unwrap() []error }); !other && tt.err != nil {
			if got := errors.Is(tt.err, tt.code); got != tt.want {
				t.Errorf("%d: errors.Is(%v, %s) = %v", i, tt.err, tt.code, got)
			}
			if got := errors.Is(tt.err, New(tt.code, "")); got != tt.want {
				t.Errorf("%d: errors.Is(%v, New(%s)) = %v", i, tt.err, tt.code, got)
			}
		}
	}
	if c, ok := CodeOf(outer); !ok || c != ConfigUnreadable {
		t.Errorf("CodeOf = %s, %v: want the outermost code", c, ok)
	}
	if _, ok := CodeOf(errors.New("plain")); ok {
		t.Error("CodeOf found a code in a plain error")
	}
	if ExitCode(&codedError{Usage}) != ExitUsage {
		t.Error("ExitCode ignores a Coder that is not an *Error")
	}
}
