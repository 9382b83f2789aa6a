// Package gcad is the guest configuration daemon: it polls the machine's
// desired state for guest configuration assignments, downloads each
// assignment's configuration package pinned by digest, verifies it
// against the machine's trust store at every load, evaluates it with
// agent/guestconfig in the assignment's mode (Audit, ApplyAndMonitor,
// ApplyAndAutoCorrect) under the layout's root, keeps its state and the
// last report of every assignment under gc_agent, and reports compliance
// per resource to the control plane. With guestconfiguration.enabled false
// it reports every assignment NotApplied and touches nothing.
package gcad
