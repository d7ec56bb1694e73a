package plugins

import (
	"bytes"
	"testing"
)

// FuzzParsePackage checks that no file makes the package parser panic, and
// that what parses packs again to a package with the same module and
// manifest. Seeds are in testdata/fuzz/FuzzParsePackage.
func FuzzParsePackage(f *testing.F) {
	if file, err := Pack(module, []byte(manifest)); err == nil {
		f.Add(file)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		p, err := Parse(file)
		if err != nil {
			return
		}
		again, err := Pack(p.Module, p.ManifestRaw)
		if err != nil {
			t.Fatalf("a parsed package does not pack again: %v", err)
		}
		q, err := Parse(again)
		if err != nil {
			t.Fatalf("a re-packed package does not parse: %v", err)
		}
		if !bytes.Equal(q.Module, p.Module) || !bytes.Equal(q.ManifestRaw, p.ManifestRaw) {
			t.Fatal("re-packing changed the module or the manifest")
		}
	})
}
