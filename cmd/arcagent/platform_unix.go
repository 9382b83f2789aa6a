//go:build !windows

package main

import "github.com/spf13/cobra"

// platformAllows: every verb runs here.
func platformAllows(*cobra.Command) error { return nil }

// platformHelp is a help text as written (for Linux).
func platformHelp(s string) string { return s }
