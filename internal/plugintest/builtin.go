package plugintest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/edgehost/edgehost/host/builtin"
)

// BuiltinOverlay builds the first-party plugins and writes, into dir, a
// `go build -overlay` file that puts each where `make build` copies it
// (host/builtin/wasm/<name>.wasm), so a binary built with it embeds them as
// a release binary does, without touching the source tree. It returns the
// overlay file's path.
func BuiltinOverlay(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	replace := map[string]string{}
	for _, name := range builtin.FirstParty {
		path, err := Build("plugins/" + name)
		if err != nil {
			return "", err
		}
		replace[filepath.Join(root, "host", "builtin", "wasm", name+".wasm")] = path
		if manifest := filepath.Join(root, "plugins", name, "manifest.json"); fileExists(manifest) {
			replace[filepath.Join(root, "host", "builtin", "wasm", name+".json")] = manifest
		}
	}
	b, err := json.Marshal(map[string]any{"Replace": replace})
	if err != nil {
		return "", fmt.Errorf("built-in plugin overlay: %w", err)
	}
	overlay := filepath.Join(dir, "builtin-overlay.json")
	if err := os.WriteFile(overlay, b, 0o644); err != nil {
		return "", fmt.Errorf("built-in plugin overlay: %w", err)
	}
	return overlay, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
