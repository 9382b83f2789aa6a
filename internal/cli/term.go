package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/arcagent/arcagent/internal/table"
)

// IsTerminal reports whether v (a reader or writer of the process, such as
// os.Stdin or os.Stdout) is a terminal. Anything without a file
// descriptor, such as a buffer or a pipe read by a test, is not. It is
// table.IsTerminal, the one terminal check, kept here for the commands.
func IsTerminal(v any) bool { return table.IsTerminal(v) }

// ErrNotTerminal is returned by Confirm when there is nobody to ask.
var ErrNotTerminal = errors.New("standard input is not a terminal")

// Confirm asks question on out and reads a y/N answer from in, which
// must be a terminal (ErrNotTerminal otherwise: a script must say yes
// with a flag, never by piping "y"). Only "y" or "yes" confirm.
func Confirm(in io.Reader, out io.Writer, question string) (bool, error) {
	if !IsTerminal(in) {
		return false, ErrNotTerminal
	}
	fmt.Fprintf(out, "%s [y/N] ", question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(out)
		return false, nil
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
