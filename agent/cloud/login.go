package cloud

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

// Login is what `arcagent fleet login` stores: an operator's server, API
// token and CA, kept 0600 in the user's config directory.
type Login struct {
	Server    string    `json:"server"`
	Token     string    `json:"token"`
	CAPEM     string    `json:"caPEM,omitempty"`
	Principal string    `json:"principal"`
	TenantID  string    `json:"tenantId"`
	LoggedIn  time.Time `json:"loggedInAt"`
}

// LoginPath is where the login lives: $ARCAGENT_FLEET_CONFIG, or
// arcagent/fleet.json in the user's config directory.
func LoginPath() (string, error) {
	if p := os.Getenv("ARCAGENT_FLEET_CONFIG"); p != "" {
		return p, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", errcode.Wrap(errcode.Usage, err, "find your config directory (set HOME or XDG_CONFIG_HOME, or ARCAGENT_FLEET_CONFIG)")
	}
	return filepath.Join(d, "arcagent", "fleet.json"), nil
}

// LoadLogin reads the stored login.
func LoadLogin() (Login, error) {
	var l Login
	p, err := LoginPath()
	if err != nil {
		return l, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return l, errcode.New(apiv1.CodeNotLoggedIn, "no login in %s", p)
	}
	if err != nil {
		return l, errcode.Wrap(apiv1.CodeNotLoggedIn, err, "read %s", p)
	}
	if err := json.Unmarshal(b, &l); err != nil || l.Server == "" || l.Token == "" {
		return l, errcode.New(apiv1.CodeNotLoggedIn, "%s is damaged; log in again", p)
	}
	return l, nil
}

// SaveLogin stores l atomically, mode 0600 whatever the file was before,
// and returns its path.
func SaveLogin(l Login) (string, error) {
	p, err := LoginPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", errcode.Wrap(errcode.WriteFailed, err, "create %s", filepath.Dir(p))
	}
	b, _ := json.MarshalIndent(l, "", "  ")
	// Enforce: a token file must never be readable by others, whatever
	// mode an earlier file had.
	if err := atomicfile.WriteFile(p, append(b, '\n'), atomicfile.WriteOptions{Mode: 0o600, Enforce: true}); err != nil {
		return "", errcode.Wrap(errcode.WriteFailed, err, "save the login")
	}
	return p, nil
}
