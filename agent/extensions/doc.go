// Package extensions holds extension packages on the machine: build, safe
// extraction, install records, handler manifest. It is the home of the
// future extension manager: a package is verified with
// package signing (keys, DSSE envelopes, trust store) and only then
// extracted under the extensions directory (/var/lib/waagent) with a
// record of every file, which later tamper checks compare against.
//
// Errors carry stable codes in the ARC01xx range shared with signing
// (ARC0105, ARC0111, ARC0117–ARC0119 are registered here).
package extensions
