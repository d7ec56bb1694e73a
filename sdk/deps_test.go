//go:build !wasip1

package sdk_test

import (
	"os/exec"
	"strings"
	"testing"
)

// heavyPackages are what a Go guest must not link through the SDK or the
// abi package: each brings hundreds of KB to megabytes of module (and
// ~4× that in machine code) into every plugin, whether it uses them or
// not (net/http through an http.Header in an SDK signature once took the
// echo plugin from 2.3 MB to 5.3 MB).
var heavyPackages = []string{"fmt", "encoding/json", "regexp", "net", "net/http", "net/url", "crypto/tls", "math/big", "text/template"}

func TestGuestDependenciesStayLight(t *testing.T) {
	// The SDK's JSON packages are for plugins that stay light; the
	// first-party plugins are held to the same rule (the twin is in every
	// deployment, the mappers in every one with devices), and so are the
	// examples that read and write JSON, which authors copy from.
	cmd := exec.Command("go", "list", "-deps", "github.com/edgehost/edgehost/sdk", "github.com/edgehost/edgehost/abi",
		"github.com/edgehost/edgehost/sdk/jsonlite", "github.com/edgehost/edgehost/sdk/mapperjson",
		"github.com/edgehost/edgehost/plugins/devicetwin", "github.com/edgehost/edgehost/plugins/virtual",
		"github.com/edgehost/edgehost/plugins/modbus", "github.com/edgehost/edgehost/plugins/route-default",
		"github.com/edgehost/edgehost/examples/kvcounter", "github.com/edgehost/edgehost/examples/mqtt-echo",
		"github.com/edgehost/edgehost/examples/route-auth",
		"github.com/edgehost/edgehost/examples/line-sensor")
	cmd.Env = append(cmd.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	for _, p := range heavyPackages {
		if deps[p] {
			t.Errorf("a Go guest of the SDK or a first-party plugin links %s (find the importer: GOOS=wasip1 GOARCH=wasm go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./sdk/... ./plugins/... | grep -w %s)", p, p)
		}
	}
}
