package extensions_test

import (
	"context"
	"fmt"

	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/signing"
)

// An audit collector's view of the installed extensions: one verdict each,
// never an error.
func ExampleCheckInstalled() {
	ctx := context.Background()
	l := layout.New("/")
	store, err := signing.LoadTrustStore(l.TrustDir())
	if err != nil {
		fmt.Println("trust store refused:", err) // itself a finding
		return
	}
	names, err := extensions.ListInstalled(l.ExtensionsDir())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range names {
		v := extensions.CheckInstalled(ctx, store, l.ExtensionsDir(), n, true)
		fmt.Println(n, v.Valid, v.Code, v.Reason, len(v.Changes))
	}
}

// The extension manager's install step: verify against the trust store, then
// extract and record.
func ExampleInstall() {
	ctx := context.Background()
	l := layout.New("/")
	store, err := signing.LoadTrustStore(l.TrustDir())
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := extensions.Install(ctx, extensions.InstallOptions{
		Package:       "/var/lib/GuestConfig/downloads/Contoso.Monitoring.StatusReporter-1.0.0.zip",
		Trust:         store,
		Expect:        signing.Expectation{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0"},
		ExtensionsDir: l.ExtensionsDir(),
	})
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	fmt.Println("installed in", res.Dir, "signed by", res.Verified.Signer)
}
