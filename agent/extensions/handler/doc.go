// Package handler speaks the Azure Linux extension handler protocol, so
// that extensions written for the Azure guest agent (waagent) run under
// arcagent unmodified: it prepares an installed extension tree
// (HandlerEnvironment.json, config/, status/, the log folder), writes
// numbered settings files whose protected part is CMS EnvelopedData
// encrypted to a machine-local RSA settings certificate, runs the
// lifecycle commands of HandlerManifest.json (working directory,
// ConfigSequenceNumber, own process group, timeout, bounded output, a CPU
// limit through a per-extension cgroup) and reads back the status file the
// handler writes.
//
// It holds no state of its own and makes no decisions: the extension
// manager (extd) decides what to run and when; see docs/extensions.md.
package handler
