//go:build linux

package table

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal 97 columns wide and returns its
// terminal end; it skips where the system has no pseudo-terminals.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("cannot unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("no pseudo-terminal number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("cannot open the terminal end: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 97}); err != nil {
		t.Fatal(err)
	}
	return s
}

// fdWriter is a writer with a file descriptor that is not an *os.File, as
// the commands' wrapped stdout and stderr are.
type fdWriter struct{ f *os.File }

func (w fdWriter) Write(p []byte) (int, error) { return w.f.Write(p) }
func (w fdWriter) Fd() uintptr                 { return w.f.Fd() }

// One terminal check decides both whether a writer is a terminal and how
// wide its tables are: a terminal is one whatever type wraps it.
func TestTerminal(t *testing.T) {
	t.Setenv("COLUMNS", "")
	pty := openPTY(t)
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeR.Close()
	defer pipeW.Close()
	for _, c := range []struct {
		name  string
		w     any
		term  bool
		width int
	}{
		{"a terminal", pty, true, 97},
		{"a terminal behind a wrapper", fdWriter{pty}, true, 97},
		{"a pipe", pipeW, false, 0},
		{"a buffer", &bytes.Buffer{}, false, 0},
	} {
		if got := IsTerminal(c.w); got != c.term {
			t.Errorf("%s: IsTerminal = %v, want %v", c.name, got, c.term)
		}
		if w, ok := c.w.(interface{ Write([]byte) (int, error) }); ok {
			if got := Width(w); got != c.width {
				t.Errorf("%s: Width = %d, want %d", c.name, got, c.width)
			}
		}
	}
}
