// Command arcserver is the arcagent control plane: `init` creates a data
// directory, `serve` runs the HTTPS API, `backup` copies the database while
// it serves, `keys rotate` rotates the token-signing key, and `loadgen`
// measures heartbeat throughput. Verbs only parse flags and call package
// controlplane.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
