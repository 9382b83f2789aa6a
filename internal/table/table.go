// Package table renders the plain-text tables of every arcagent command in
// one style: a header row, columns aligned and two spaces apart, no boxes.
// A table fits a width: the widest free-text column wraps onto more lines,
// and columns empty on every row are left out. Cells are made one line
// (control characters become spaces), so that text from a report, an
// inventory or a server never moves the cursor of the terminal it is shown on.
package table

import (
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/term"
)

// Options shape a table.
type Options struct {
	// Width is the most characters a line may take; 0 is unlimited (pipes
	// and files, so that their content does not depend on a terminal).
	Width int
	// Wrap is the column that wraps to fit Width (its header); "" wraps the
	// widest column.
	Wrap string
	// KeepEmpty keeps columns that are empty on every row.
	KeepEmpty bool
	// NoHeader leaves the header row out (key–value listings).
	NoHeader bool
	// Paint, when set, decorates a cell after it is aligned (colours):
	// row is 0-based in Rows, col indexes Header. The decoration must not
	// take room on the screen.
	Paint func(row, col int, cell string) string
}

// minWrap is the narrowest a wrapped column becomes, however small the
// width: below it a table is unreadable anyway.
const minWrap = 12

// gap separates columns.
const gap = "  "

// IsTerminal reports whether v (a reader or writer of the process, such as
// os.Stdin or os.Stdout) is a terminal. Anything without a file
// descriptor, such as a buffer or a pipe read by a test, is not. It is the
// one terminal check of arcagent (internal/cli.IsTerminal is this).
func IsTerminal(v any) bool {
	_, ok := terminalFd(v)
	return ok
}

// terminalFd returns v's file descriptor when v is a terminal.
func terminalFd(v any) (int, bool) {
	f, ok := v.(interface{ Fd() uintptr })
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// Width returns the width tables written to w should fit: the terminal's
// when w is one, else $COLUMNS when it is a positive number, else 0
// (unlimited).
func Width(w io.Writer) int {
	if fd, ok := terminalFd(w); ok {
		if cols, _, err := term.GetSize(fd); err == nil && cols > 0 {
			return cols
		}
	}
	if n, err := strconv.Atoi(strings.TrimSpace(os.Getenv("COLUMNS"))); err == nil && n > 0 {
		return n
	}
	return 0
}

// Render writes header and rows to w. Rows may be shorter than the header
// (missing cells are empty).
func Render(w io.Writer, header []string, rows [][]string, o Options) error {
	_, err := w.Write(Append(nil, header, rows, o))
	return err
}

// Append renders the table at the end of b and returns the extended
// buffer, so that a caller rendering block after block reuses one.
func Append(b []byte, header []string, rows [][]string, o Options) []byte {
	n := len(header)
	for _, r := range rows {
		n = max(n, len(r))
	}
	cell := func(r []string, i int) string {
		if i < len(r) {
			return OneLine(r[i])
		}
		return ""
	}
	// The columns shown and their widths.
	var cols []int
	widths := make([]int, n)
	for i := 0; i < n; i++ {
		empty := true
		for _, r := range rows {
			c := cell(r, i)
			if strings.TrimSpace(c) != "" {
				empty = false
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
		if empty && !o.KeepEmpty && len(rows) > 0 {
			continue
		}
		if !o.NoHeader {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell(header, i)))
		}
		cols = append(cols, i)
	}
	if len(cols) == 0 {
		return b
	}
	wrap := -1
	if o.Width > 0 {
		total := len(gap) * (len(cols) - 1)
		for _, i := range cols {
			total += widths[i]
		}
		if total > o.Width {
			wrap = cols[0]
			for _, i := range cols {
				if (o.Wrap != "" && cell(header, i) == o.Wrap) || (o.Wrap == "" && widths[i] > widths[wrap]) {
					wrap = i
				}
			}
			widths[wrap] = max(widths[wrap]-(total-o.Width), min(minWrap, widths[wrap]))
		}
	}
	line := func(row int, cells []string) {
		start := len(b)
		for k, i := range cols {
			c := cells[i]
			pad := widths[i] - utf8.RuneCountInString(c)
			if o.Paint != nil && row >= 0 && c != "" {
				c = o.Paint(row, i, c)
			}
			b = append(b, c...)
			if k == len(cols)-1 {
				break
			}
			for ; pad > 0; pad-- {
				b = append(b, ' ')
			}
			b = append(b, gap...)
		}
		// No trailing blanks when the last cells are empty.
		for len(b) > start && b[len(b)-1] == ' ' {
			b = b[:len(b)-1]
		}
		b = append(b, '\n')
	}
	cells := make([]string, n)
	emit := func(row int, r []string) {
		for i := range cells {
			cells[i] = cell(r, i)
		}
		if wrap < 0 {
			line(row, cells)
			return
		}
		parts := Wrap(cells[wrap], widths[wrap])
		for k, p := range parts {
			if k > 0 {
				for i := range cells {
					cells[i] = ""
				}
			}
			cells[wrap] = p
			line(row, cells)
		}
	}
	if !o.NoHeader {
		emit(-1, header)
	}
	for i, r := range rows {
		emit(i, r)
	}
	return b
}

// Wrap breaks s into lines of at most width characters: at spaces where
// it can, then after the commas of a list, and inside words longer than a
// line.
func Wrap(s string, width int) []string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return []string{s}
	}
	var out []string
	var cur []rune
	for _, word := range strings.Fields(s) {
		wr := []rune(word)
		for len(wr) > 0 {
			room := width - len(cur)
			if len(cur) > 0 {
				room-- // the space before the word
			}
			switch {
			case len(wr) <= room:
				if len(cur) > 0 {
					cur = append(cur, ' ')
				}
				cur = append(cur, wr...)
				wr = nil
			case len(cur) > 0:
				out = append(out, string(cur))
				cur = cur[:0]
			default: // a word longer than a line: after a comma if it can
				cut := width
				for k := width - 1; k > 0; k-- {
					if wr[k-1] == ',' {
						cut = k
						break
					}
				}
				out = append(out, string(wr[:cut]))
				wr = wr[cut:]
			}
		}
	}
	if len(cur) > 0 || len(out) == 0 {
		out = append(out, string(cur))
	}
	return out
}

// OneLine replaces control characters (newlines, escapes, C1 controls)
// with spaces.
func OneLine(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
}

func isControl(r rune) bool { return r < ' ' || (r >= 0x7f && r < 0xa0) }
