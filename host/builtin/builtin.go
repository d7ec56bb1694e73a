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
var FirstParty = []string{"devicetwin"}

//go:embed all:wasm
var files embed.FS

// Plugin is a first-party plugin embedded in the binary.
type Plugin struct {
	Name string
	Wasm []byte
	// Config is passed to the plugin's edgehost_init; the daemon sets it
	// from its own config (the twin's node name, for one).
	Config []byte
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
		code, err := files.ReadFile("wasm/" + e.Name())
		if err != nil {
			continue
		}
		out = append(out, Plugin{Name: name, Wasm: code})
	}
	return out
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
