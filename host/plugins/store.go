package plugins

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgehost/edgehost/host/store"
	bolt "go.etcd.io/bbolt"
)

// Version is one installed version of a plugin.
type Version struct {
	// Version is the manifest's version.
	Version string `json:"version"`
	// Blob is the hex sha256 of the package file, its name in the blob dir.
	Blob string `json:"blob"`
	// ModuleDigest is the hex sha256 of the module without edgehost.*
	// sections.
	ModuleDigest string `json:"module_digest"`
	// Signer names the trusted key that signed it; empty when unsigned.
	Signer string `json:"signer,omitempty"`
	// Source is where it was installed from: local or remote.
	Source string `json:"source"`
	// InstalledAt is when it was installed.
	InstalledAt time.Time `json:"installed_at"`
}

// Record is an installed plugin's persisted state.
type Record struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	// Current is the version in service (when enabled).
	Current Version `json:"current"`
	// Previous is the version a rollback returns to, if any.
	Previous *Version `json:"previous,omitempty"`
}

// Store keeps installed plugins: records in the bbolt namespace
// plugins/installed, package files in a blob directory by digest.
type Store struct {
	ns      *store.Namespace
	blobDir string
}

// NewStore returns the plugin store over st, keeping blobs in blobDir
// (created if missing).
func NewStore(st *store.Store, blobDir string) (*Store, error) {
	if err := os.MkdirAll(blobDir, 0o700); err != nil {
		return nil, fmt.Errorf("plugin store: blob dir: %w", err)
	}
	return &Store{ns: st.Namespace("plugins", "installed"), blobDir: blobDir}, nil
}

// PutBlob writes a package file durably under its digest and returns the
// digest. Writing the same file twice is harmless.
func (s *Store) PutBlob(file []byte) (string, error) {
	d := sha256.Sum256(file)
	digest := hex.EncodeToString(d[:])
	path := s.blobPath(digest)
	if _, err := os.Stat(path); err == nil {
		return digest, nil
	}
	tmp, err := os.CreateTemp(s.blobDir, digest+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("plugin store: write blob: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(file)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("plugin store: write blob %s: %w", digest[:12], err)
	}
	return digest, nil
}

// ReadBlob reads a package file and checks it still has its digest.
func (s *Store) ReadBlob(digest string) ([]byte, error) {
	b, err := os.ReadFile(s.blobPath(digest))
	if err != nil {
		return nil, fmt.Errorf("plugin store: read blob: %w", err)
	}
	if d := sha256.Sum256(b); hex.EncodeToString(d[:]) != digest {
		return nil, fmt.Errorf("plugin store: blob %s is corrupt (digest mismatch)", digest[:12])
	}
	return b, nil
}

func (s *Store) blobPath(digest string) string {
	return filepath.Join(s.blobDir, digest+".wasm")
}

// Save writes r durably.
func (s *Store) Save(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("plugin store: save %q: %w", r.Name, err)
	}
	if err := s.ns.Update(func(bk *bolt.Bucket) error { return bk.Put([]byte(r.Name), b) }); err != nil {
		return fmt.Errorf("plugin store: save %q: %w", r.Name, err)
	}
	return nil
}

// Delete removes name's record.
func (s *Store) Delete(name string) error {
	if err := s.ns.Update(func(bk *bolt.Bucket) error { return bk.Delete([]byte(name)) }); err != nil {
		return fmt.Errorf("plugin store: delete %q: %w", name, err)
	}
	return nil
}

// List returns every record, by name.
func (s *Store) List() ([]Record, error) {
	var out []Record
	err := s.ns.View(func(bk *bolt.Bucket) error {
		return bk.ForEach(func(k, v []byte) error {
			var r Record
			if err := json.NewDecoder(bytes.NewReader(v)).Decode(&r); err != nil {
				return fmt.Errorf("record %q: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("plugin store: list: %w", err)
	}
	return out, nil
}

// GC removes the blobs no record refers to.
func (s *Store) GC() error {
	records, err := s.List()
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, r := range records {
		keep[r.Current.Blob] = true
		if r.Previous != nil {
			keep[r.Previous.Blob] = true
		}
	}
	entries, err := os.ReadDir(s.blobDir)
	if err != nil {
		return fmt.Errorf("plugin store: gc: %w", err)
	}
	for _, e := range entries {
		if digest, ok := strings.CutSuffix(e.Name(), ".wasm"); ok && !keep[digest] {
			if err := os.Remove(filepath.Join(s.blobDir, e.Name())); err != nil {
				return fmt.Errorf("plugin store: gc: %w", err)
			}
		}
	}
	return nil
}
