// Package builtin holds the first-party plugins (plugins/*) that `make
// build` embeds in the edgehost binary, so a daemon with no config and an
// empty data dir has a working device twin.
//
// A plain `go build ./cmd/edgehost` embeds none of them; Missing then names
// what the binary lacks. An operator overrides a built-in plugin by giving
// a plugin of the same name in the config, the plugin dir or by install.
package builtin

import (
	"embed"
	"io/fs"
	"slices"
	"strings"
)

// FirstParty names every first-party plugin, the directories under
// plugins/ (a test keeps the two in step).
var FirstParty = []string{"devicetwin", "modbus", "route-default", "virtual"}

//go:embed all:wasm
var files embed.FS

// Plugin is a first-party plugin embedded in the binary.
type Plugin struct {
	Name string
	// file is the module's path in the embedded FS: read when loaded,
	// not kept (the binary already holds it once).
	file string
	// code is the module of a plugin made with FromModule.
	code []byte
	// Config is passed to the plugin's edgehost_init; the daemon sets it
	// from its own config (the twin's node name, for one).
	Config []byte
	// Manifest is the plugin's plugins/<name>/manifest.json, which `make
	// build` copies beside the module as <name>.json; nil without one.
	// The host takes its mapper declaration and its capabilities from it
	// (under the operator's restrict ceiling), not its limits: a built-in
	// plugin runs under the operator's default limits, and one without a
	// manifest is trusted.
	Manifest []byte
}

// Plugins returns the embedded plugins, sorted by name.
func Plugins() []Plugin {
	entries, err := fs.ReadDir(files, "wasm")
	if err != nil {
		return nil // the directory is always embedded; no entries is no plugins
	}
	var out []Plugin
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".wasm")
		if !ok || e.IsDir() {
			continue
		}
		manifest, _ := files.ReadFile("wasm/" + name + ".json") // absent: nil
		out = append(out, Plugin{Name: name, file: "wasm/" + e.Name(), Manifest: manifest})
	}
	return out
}

// FromModule is a built-in plugin made from a module and its manifest (nil:
// none) rather than embedded: for a host that brings its own, and tests.
func FromModule(name string, module, manifest []byte) Plugin {
	return Plugin{Name: name, code: module, Manifest: manifest}
}

// Module returns the plugin's module. For an embedded one it is a copy (the
// embedded FS cannot hand out its bytes without copying), which a caller
// drops once it has compiled it.
func (p Plugin) Module() ([]byte, error) {
	if p.code != nil {
		return p.code, nil
	}
	return files.ReadFile(p.file)
}

// Missing returns the first-party plugins this binary was built without.
func Missing() []string {
	have := Plugins()
	var out []string
	for _, name := range FirstParty {
		if !slices.ContainsFunc(have, func(p Plugin) bool { return p.Name == name }) {
			out = append(out, name)
		}
	}
	return out
}
