package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Package is a parsed plugin package: a wasm module with the manifest (and
// optionally a signature) in custom sections.
type Package struct {
	// Module is the wasm module with the edgehost.* sections removed: the
	// bytes that are compiled and whose digest is signed.
	Module []byte
	// ManifestRaw is the manifest section's bytes, exactly as packed.
	ManifestRaw []byte
	// Manifest is ManifestRaw decoded and validated.
	Manifest *Manifest
	// Signature is the signature section, nil when unsigned.
	Signature *Signature
	// ModuleDigest and ManifestDigest are the sha256 digests of Module and
	// ManifestRaw.
	ModuleDigest, ManifestDigest [sha256.Size]byte
}

// ErrNoManifest is wrapped by Parse's error for a module without a manifest.
var ErrNoManifest = errors.New("no " + SectionManifest + " section")

// Parse splits a package file into module, manifest and signature and
// validates the manifest. It does not verify the signature; see
// Trust.Verify.
func Parse(file []byte) (*Package, error) {
	secs, err := sections(file)
	if err != nil {
		return nil, fmt.Errorf("plugin package: %w", err)
	}
	p := &Package{}
	module := make([]byte, 0, len(file))
	module = append(module, wasmHeader...)
	var sigRaw []byte
	for _, s := range secs {
		if !s.isOurs() {
			module = append(module, file[s.start:s.end]...)
			continue
		}
		payload := file[s.payloadOffset:s.end]
		switch {
		case s.name == SectionManifest && p.ManifestRaw != nil,
			s.name == SectionSignature && sigRaw != nil:
			return nil, fmt.Errorf("plugin package: more than one %s section", s.name)
		case s.name == SectionManifest:
			p.ManifestRaw = payload
		default:
			sigRaw = payload
		}
	}
	if p.ManifestRaw == nil {
		return nil, fmt.Errorf("plugin package: %w (pack it with `edgehost plugin pack`)", ErrNoManifest)
	}
	p.Module = module
	p.ModuleDigest = sha256.Sum256(module)
	p.ManifestDigest = sha256.Sum256(p.ManifestRaw)
	if p.Manifest, err = ParseManifest(p.ManifestRaw); err != nil {
		return nil, fmt.Errorf("plugin package: %w", err)
	}
	if sigRaw != nil {
		var sig Signature
		if err := json.Unmarshal(sigRaw, &sig); err != nil {
			return nil, fmt.Errorf("plugin package: %s section: %w", SectionSignature, err)
		}
		p.Signature = &sig
	}
	return p, nil
}

// Pack makes a package from a wasm module and manifest JSON. Any edgehost.*
// sections already in module are replaced; the package is unsigned.
func Pack(module, manifest []byte) ([]byte, error) {
	if _, err := ParseManifest(manifest); err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	secs, err := sections(module)
	if err != nil {
		return nil, fmt.Errorf("pack: module: %w", err)
	}
	out := make([]byte, 0, len(module)+len(manifest)+64)
	out = append(out, wasmHeader...)
	for _, s := range secs {
		if !s.isOurs() {
			out = append(out, module[s.start:s.end]...)
		}
	}
	return append(out, customSection(SectionManifest, manifest)...), nil
}

// Bytes encodes the package: the module, the manifest section and, if
// signed, the signature section.
func (p *Package) Bytes() []byte {
	out := append([]byte(nil), p.Module...)
	out = append(out, customSection(SectionManifest, p.ManifestRaw)...)
	if p.Signature != nil {
		sig, _ := json.Marshal(p.Signature)
		out = append(out, customSection(SectionSignature, sig)...)
	}
	return out
}

// ModuleDigestHex returns the module digest in hex.
func (p *Package) ModuleDigestHex() string { return hex.EncodeToString(p.ModuleDigest[:]) }
