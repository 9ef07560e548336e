// Command pulumi-resource-kubernetes serves the upstream Kubernetes provider.
//
// The upstream main package embeds JSON files that `go generate` writes and that
// are therefore missing from the module zip. This glue embeds the same data,
// derived at build time by tools/build.sh from the module's schema.json, and
// calls the provider's public Serve function.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, schema, terraformMapping)
}
