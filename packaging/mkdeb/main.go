// Command mkdeb writes arcagent's two Debian packages
// (dist/arcagent_VERSION_ARCH.deb and dist/arcserver_VERSION_ARCH.deb) from
// binaries already built for ARCH. `make deb` builds the binaries and runs
// it; the logic is internal/debpkg's.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/arcagent/arcagent/internal/debpkg"
)

func main() {
	var in debpkg.Inputs
	var out string
	flag.StringVar(&in.Version, "version", debpkg.DevVersion, "version the binaries were built as (git describe output or MAJOR.MINOR.PATCH)")
	flag.StringVar(&in.Arch, "arch", "amd64", "Debian architecture: amd64 or arm64")
	flag.StringVar(&in.BinDir, "bin", "", "directory holding arcagent and arcserver built for -arch (required)")
	flag.StringVar(&in.UnitDir, "units", "packaging/systemd", "directory of the systemd units")
	flag.StringVar(&out, "out", "dist", "directory to write the packages to")
	flag.Parse()
	if in.BinDir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: mkdeb -bin DIR [-version V] [-arch amd64|arm64] [-units DIR] [-out DIR]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	paths, err := debpkg.Build(ctx, in, out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkdeb:", err)
			os.Exit(1)
		}
		fmt.Printf("%s\t%d bytes\n", p, fi.Size())
	}
}
