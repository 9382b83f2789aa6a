package depspin

import (
	_ "github.com/Masterminds/semver/v3"
	_ "github.com/go-jose/go-jose/v4"
	_ "github.com/gofrs/flock"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/google/cel-go/cel"
	_ "github.com/google/go-github/v60/github"
	_ "github.com/olekukonko/tablewriter"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/sigstore/sigstore/pkg/cryptoutils"
	_ "github.com/sigstore/sigstore/pkg/signature"
	_ "github.com/sigstore/sigstore/pkg/signature/dsse"
	_ "github.com/spf13/cobra"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"
	_ "modernc.org/sqlite"
)
