package controlplane

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
)

// maxHeartbeatBody bounds a heartbeat body: a few short fields and, now and
// then, the machine's inventory (every field of which validateInventory
// bounds to at most 256 bytes).
const maxHeartbeatBody = 16 << 10

// validateInventory checks an inventory a machine reports, at registration
// or in a heartbeat; prefix names it in messages ("inventory").
func validateInventory(prefix string, inv *apiv1.Inventory) error {
	if err := checkName(prefix+".hostname", inv.Hostname, 253); err != nil {
		return err
	}
	if err := checkText(prefix+".osType", inv.OSType, 32, true); err != nil {
		return err
	}
	if err := checkText(prefix+".agentVersion", inv.AgentVersion, 64, true); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"osName", inv.OSName}, {"osVersion", inv.OSVersion}, {"kernel", inv.Kernel}, {"arch", inv.Arch}, {"fqdn", inv.FQDN},
		{"manufacturer", inv.Manufacturer}, {"model", inv.Model}, {"vmId", inv.VMID},
	} {
		if err := checkText(prefix+"."+f.name, f.v, 256, false); err != nil {
			return err
		}
	}
	if inv.CPUs < 0 || inv.MemoryMB < 0 {
		return errf(apiv1.CodeBadRequest, "%s.cpus and %s.memoryMB must not be negative", prefix, prefix)
	}
	return nil
}

// storeInventory stores the inventory a heartbeat carries, unless it is
// the one this process stored last for the machine (an agent restarting
// sends it again): a heartbeat without one, or with an unchanged one,
// writes nothing beyond the heartbeat itself.
func (s *Server) storeInventory(r *http.Request, id string, m *machineEntry, inv *apiv1.Inventory) error {
	b, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	digest := string(sum[:])
	if old, _ := m.invDigest.Load().(string); old == digest {
		return nil
	}
	if err := s.st.UpdateMachineInventory(r.Context(), id, b); err != nil {
		return storeErr(err, "machine "+id)
	}
	m.invDigest.Store(digest)
	s.log.Info("machine inventory updated", "machine", id, "agent_version", inv.AgentVersion, "os", inv.OSName+" "+inv.OSVersion)
	return nil
}

// inventoryStatus is the part of a stored status report the inventory
// reads, and storedInventory that of a stored inventory: decoding only
// these fields (the rest is scanned, not built) keeps a row cheap.
type inventoryStatus struct {
	Extensions []apiv1.InventoryExtension `json:"extensions"`
}

type storedInventory struct {
	OSType       string `json:"osType"`
	OSName       string `json:"osName"`
	OSVersion    string `json:"osVersion"`
	Kernel       string `json:"kernel"`
	Arch         string `json:"arch"`
	AgentVersion string `json:"agentVersion"`
}

// toInventory converts a stored row; a damaged stored document leaves its
// fields empty rather than failing the whole list.
func toInventory(row *store.InventoryRow) apiv1.MachineInventory {
	out := apiv1.MachineInventory{
		ID: row.ID, Name: row.Name, ResourceID: row.ResourceID, SubscriptionID: row.SubscriptionID, ResourceGroup: row.ResourceGroup,
		LastHeartbeat: row.LastHeartbeat, AgentVersion: row.AgentVersion, Extensions: []apiv1.InventoryExtension{},
	}
	var inv storedInventory
	if json.Unmarshal(row.Inventory, &inv) == nil {
		out.OSType, out.OSName, out.OSVersion, out.Kernel, out.Arch = inv.OSType, inv.OSName, inv.OSVersion, inv.Kernel, inv.Arch
		if out.AgentVersion == "" {
			out.AgentVersion = inv.AgentVersion
		}
	}
	if len(row.Status) > 0 {
		var st inventoryStatus
		if json.Unmarshal(row.Status, &st) == nil && st.Extensions != nil {
			out.Extensions = st.Extensions
		}
	}
	return out
}

// handleListInventory answers GET /v1/inventory[?subscription=S&resourceGroup=RG]:
// the machines the caller may read (machines/read on each), with agent
// version, OS and the extensions of their last status report. The list
// is streamed from one query as it is read, so the server holds one
// machine at a time however large the fleet.
func (s *Server) handleListInventory(w http.ResponseWriter, r *http.Request, p *principal) error {
	sub, rg, err := listScope(r, p, rbac.MachinesRead)
	if err != nil {
		return err
	}
	now := s.now()
	var bw *bufio.Writer
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // one buffer for every row
	n := 0
	err = s.st.EachInventory(r.Context(), store.MachineFilter{SubscriptionID: sub, ResourceGroup: rg}, func(row *store.InventoryRow) error {
		if !p.can(rbac.MachinesRead, row.ResourceID) {
			return nil
		}
		v := toInventory(row)
		v.Status = apiv1.StatusAt(row.LastHeartbeat, now)
		buf.Reset()
		if err := enc.Encode(&v); err != nil {
			return err
		}
		b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if bw == nil {
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			bw = bufio.NewWriterSize(w, 64<<10)
			_, _ = bw.WriteString(`{"value":[`)
		}
		if n > 0 {
			_ = bw.WriteByte(',')
		}
		n++
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		if bw == nil {
			return err
		}
		// Part of the list is sent: end the response without closing the
		// JSON, so that the client sees a broken body, never a short list.
		s.log.Error("the inventory list failed while being sent", "error", err, "sent", n)
		_ = bw.Flush()
		panic(http.ErrAbortHandler)
	}
	if bw == nil {
		writeJSON(w, http.StatusOK, apiv1.List[apiv1.MachineInventory]{Value: []apiv1.MachineInventory{}})
		return nil
	}
	_, _ = bw.WriteString("]}\n")
	return bw.Flush()
}
