package releases

import (
	"strings"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// MachineFromInventory fills m with a machine of a control plane's fleet
// inventory (GET /v1/inventory), as the inventory file row
// {"name", "agent", "extensions": [{"name": "PUBLISHER.TYPE", "version"}]}
// of the same machine would: so a check reads the same fleet from either.
// An extension is its reported publisher and type (its name when the
// machine reported neither). idx is the machine's 1-based position, which
// names a machine without a name; Line stays 0 (no file).
func MachineFromInventory(m *Machine, v *apiv1.MachineInventory, idx int) {
	jm := jsonMachine{Name: v.Name, AgentVersion: v.AgentVersion, Extensions: make([]jsonExtension, 0, len(v.Extensions))}
	for _, x := range v.Extensions {
		name := x.Name
		if strings.TrimSpace(x.Publisher) != "" && strings.TrimSpace(x.Type) != "" {
			name = ExtensionProduct(x.Publisher, x.Type)
		}
		jm.Extensions = append(jm.Extensions, jsonExtension{Name: name, Version: x.Version})
	}
	*m = Machine{Extensions: m.Extensions[:0]}
	fillJSONMachine(m, &jm, idx)
}
