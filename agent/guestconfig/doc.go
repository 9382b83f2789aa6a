// Package guestconfig is guest configuration: configuration documents of
// typed resources (file, keyvalue, sysctl, service, package, user, group,
// exec), each with get, test and set; the engine that evaluates a document
// in Audit, ApplyAndMonitor or ApplyAndAutoCorrect mode under a root prefix
// and reports every step with the evidence it saw; signed configuration
// packages; and the built-in Linux security baseline.
//
// Every path a resource names is a path of the target ("/etc/shadow") and is
// resolved inside Env's root: reads are bounded, never follow a final link
// and refuse anything but regular files; writes are atomic, keep the
// previous owner and mode unless the resource prescribes them, and keep a
// backup of the previous file under the agent's state directory. A path
// that would leave the root is an error, never a write elsewhere.
package guestconfig
