// Command arcagent is the machine-side CLI of arcagent: local security
// controls, extension packages, the audit engine and the service daemons.
// Verbs only parse flags and call a package; see root.go for the wiring.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
