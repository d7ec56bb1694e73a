package builtin_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/edgehost/edgehost/host/builtin"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// TestFirstPartyMatchesPluginsDir keeps FirstParty in step with the
// plugin folders under plugins/.
func TestFirstPartyMatchesPluginsDir(t *testing.T) {
	root, err := plugintest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mains, err := filepath.Glob(filepath.Join(root, "plugins", "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, m := range mains {
		dirs = append(dirs, filepath.Base(filepath.Dir(m)))
	}
	slices.Sort(dirs)
	want := slices.Sorted(slices.Values(builtin.FirstParty))
	if !slices.Equal(dirs, want) {
		t.Fatalf("plugins/ holds %v, FirstParty lists %v", dirs, want)
	}
}

// TestPluginsAndMissing checks that what is embedded and what is missing
// add up to FirstParty, whichever way the binary was built.
func TestPluginsAndMissing(t *testing.T) {
	var names []string
	for _, p := range builtin.Plugins() {
		if code, err := p.Module(); err != nil || len(code) < 8 || string(code[:4]) != "\x00asm" {
			t.Errorf("embedded %s is not a wasm module", p.Name)
		}
		names = append(names, p.Name)
	}
	names = append(names, builtin.Missing()...)
	slices.Sort(names)
	if want := slices.Sorted(slices.Values(builtin.FirstParty)); !slices.Equal(names, want) {
		t.Fatalf("embedded + missing = %v, want %v", names, want)
	}
}
