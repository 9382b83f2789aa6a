package reports

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/arcagent/arcagent/internal/atomicfile"
)

// Writer renders a report in one format.
type Writer interface {
	Write(w io.Writer, r *Report) error
}

// WriterFunc adapts a function to Writer.
type WriterFunc func(w io.Writer, r *Report) error

// Write calls f.
func (f WriterFunc) Write(w io.Writer, r *Report) error { return f(w, r) }

// Options are passed to writer factories.
type Options struct {
	// Color allows ANSI colours (table on a terminal).
	Color bool
	// Width is the terminal width the table fits (0: unlimited). Files are
	// always written unlimited, so that they do not depend on a terminal.
	Width int
}

// Factory makes a Writer for the given options.
type Factory func(Options) Writer

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register adds a format. Writers register themselves from init.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[name]; dup {
		panic("reports: format registered twice: " + name)
	}
	factories[name] = f
}

// Formats returns the registered format names, sorted.
func Formats() []string {
	mu.RLock()
	defer mu.RUnlock()
	return slices.Sorted(maps.Keys(factories))
}

// New returns the writer for a format.
func New(name string, opts Options) (Writer, error) {
	mu.RLock()
	f, ok := factories[name]
	mu.RUnlock()
	if !ok {
		return nil, UnknownFormat(name, Formats())
	}
	return f(opts), nil
}

// UnknownFormat is the error for an -o format that is not one of known,
// in the one shape every command uses: the known formats sorted.
func UnknownFormat(name string, known []string) error {
	return fmt.Errorf("unknown report format %q (known: %s)", name, strings.Join(slices.Sorted(slices.Values(known)), ", "))
}

// Output is one requested output: a format and a file ("" or "-" = stdout).
type Output struct {
	Format string
	File   string
}

func knownFormat(format string) error {
	_, err := New(format, Options{})
	return err
}

// parseOutput parses "FORMAT" or "FORMAT=FILE".
func parseOutput(spec string, known func(format string) error) (Output, error) {
	format, file, _ := strings.Cut(spec, "=")
	format = strings.ToLower(strings.TrimSpace(format))
	if format == "" {
		return Output{}, fmt.Errorf("empty output format in %q: use FORMAT or FORMAT=FILE", spec)
	}
	if err := known(format); err != nil {
		return Output{}, err
	}
	if strings.Contains(spec, "=") && strings.TrimSpace(file) == "" {
		return Output{}, fmt.Errorf("no file after %q: use %s=FILE, or %s alone for standard output", format+"=", format, format)
	}
	return Output{Format: format, File: strings.TrimSpace(file)}, nil
}

// ParseOutputs parses several specs for report formats and refuses two
// outputs to one place.
func ParseOutputs(specs []string) ([]Output, error) { return ParseOutputsFor(specs, knownFormat) }

// ParseOutputsFor is ParseOutputs for another set of formats: known says
// whether a format exists (nil) or why not. Other commands with their own
// writers (fleet currency) parse -o the same way through it.
func ParseOutputsFor(specs []string, known func(format string) error) ([]Output, error) {
	var outs []Output
	seen := map[string]string{}
	for _, s := range specs {
		o, err := parseOutput(s, known)
		if err != nil {
			return nil, err
		}
		dest := o.File
		if dest == "" || dest == "-" {
			dest = "-"
		} else if abs, err := filepath.Abs(dest); err == nil {
			dest = abs
		}
		if prev, dup := seen[dest]; dup {
			where := "standard output"
			if dest != "-" {
				where = o.File
			}
			return nil, fmt.Errorf("formats %s and %s both write to %s: give one of them a file (FORMAT=FILE)", prev, o.Format, where)
		}
		seen[dest] = o.Format
		outs = append(outs, o)
	}
	return outs, nil
}

// ToStdout reports whether o goes to standard output.
func (o Output) ToStdout() bool { return o.File == "" || o.File == "-" }

// WriteAll writes r to every output. Files are written atomically (0644),
// so a failed run never leaves half a report for CI to upload.
func WriteAll(r *Report, outs []Output, stdout io.Writer, opts Options) error {
	for _, o := range outs {
		wr, err := New(o.Format, opts)
		if err != nil {
			return err
		}
		if o.ToStdout() {
			if err := wr.Write(stdout, r); err != nil {
				return fmt.Errorf("write %s report: %w", o.Format, err)
			}
			continue
		}
		plain, _ := New(o.Format, Options{})
		err = atomicfile.Write(o.File, atomicfile.WriteOptions{Mode: 0o644, Output: true}, func(w io.Writer) error {
			return plain.Write(w, r)
		})
		if err != nil {
			return fmt.Errorf("write %s report to %s: %w", o.Format, o.File, err)
		}
	}
	return nil
}

// OpenReport reads a saved JSON report from a file ("-" for stdin).
func OpenReport(path string, stdin io.Reader) (*Report, error) {
	var rd io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open report: %w", err)
		}
		defer f.Close()
		rd = f
	}
	return ReadJSON(rd)
}
