// Package safetext makes text from an untrusted source (an audited host, a
// saved report, an inventory) safe to show to a person: control
// characters, invisible formatting characters and invalid UTF-8 are
// written as Go escapes (\x1b, \r, \u202e, \xff), exactly as the %q verb
// and strconv.Quote write them in error messages, but without the quotes
// around the text, so a hostname cannot clear a terminal, ring its bell,
// rewrite a line with a carriage return or reverse the text around it.
//
// Printable characters, including non-ASCII letters and symbols, are kept
// as they are; the backslash is kept too (Windows paths stay readable), so
// the result is for reading, not for parsing back.
package safetext

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Line returns s as one safe line: every character strconv.IsPrint
// refuses, line breaks and tabs included, is escaped. The space is kept.
func Line(s string) string { return escape(s, false) }

// Text is Line for text of several lines: newlines and tabs are kept,
// everything else Line escapes (the carriage return included) is escaped.
func Text(s string) string { return escape(s, true) }

// unsafe reports whether r must be escaped.
func unsafe(r rune, keepLines bool) bool {
	if r == ' ' || (keepLines && (r == '\n' || r == '\t')) {
		return false
	}
	return !strconv.IsPrint(r)
}

func escape(s string, keepLines bool) string {
	start := -1
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafe(r, keepLines) {
			start = i
			break
		}
		i += size
	}
	if start < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:start])
	for i := start; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			const hex = "0123456789abcdef"
			b.WriteString(`\x`)
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&0xf])
		case unsafe(r, keepLines):
			q := strconv.QuoteRune(r) // '\x1b', '\u202e', '\r'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
