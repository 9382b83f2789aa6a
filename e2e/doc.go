// Package e2e is the installed-system test behind `make e2e` (build tag
// e2e): a throwaway Debian root made with debootstrap --variant=minbase
// from the machine's configured mirror (cached as a tarball between runs),
// the arcagent .deb installed in it with dpkg, the host's `arcagent audit
// --root ROOT --profile privilege` with zero failures, `dpkg --purge`
// leaving only what docs/packaging.md lists, and `arcagent upgrade` inside
// the root: v1 → v2 with localconfig.json kept, a tampered v3 refused, a
// v2 → v1 downgrade refused. It needs root, debootstrap, chroot and the
// Debian mirror; it skips and says why when one is missing.
package e2e
