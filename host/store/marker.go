package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Marker is the record, kept beside the store file as <file>.id, that a
// store was created in this data dir. With it, a missing or empty store file
// is damage, not a first start.
type Marker struct {
	// ID names this store; a restore keeps it, a reset makes a new one.
	ID string `json:"id"`
	// Created is when the store was first created.
	Created time.Time `json:"created"`
	// Restored is when the store was last restored from a snapshot, and
	// From the snapshot's file.
	Restored time.Time `json:"restored,omitzero"`
	From     string    `json:"from,omitempty"`
}

// MarkerPath is the marker file of the store file at path.
func MarkerPath(path string) string { return path + ".id" }

// maxMarkerBytes bounds what ReadMarker reads: a marker is a few lines.
const maxMarkerBytes = 4096

// ErrBadMarker is wrapped by ReadMarker's error for a marker file that
// exists but does not decode: it still says a store existed.
var ErrBadMarker = errors.New("bad store marker")

// ReadMarker reads the marker of the store file at path. A missing marker
// is (nil, nil).
func ReadMarker(path string) (*Marker, error) {
	data, err := os.ReadFile(MarkerPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read store marker: %w", err)
	}
	m, err := DecodeMarker(data)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadMarker, MarkerPath(path), err)
	}
	return m, nil
}

// DecodeMarker parses a marker file. Any readable marker says that a store
// existed, so only its id is required.
func DecodeMarker(data []byte) (*Marker, error) {
	if len(data) > maxMarkerBytes {
		return nil, fmt.Errorf("%d bytes, longer than %d", len(data), maxMarkerBytes)
	}
	var m Marker
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if m.ID == "" {
		return nil, errors.New(`no "id"`)
	}
	return &m, nil
}

// newMarker returns the marker of a store created now.
func newMarker() *Marker {
	b := make([]byte, 16)
	rand.Read(b)
	return &Marker{ID: hex.EncodeToString(b), Created: time.Now().UTC()}
}

// writeMarker writes m as the marker of the store file at path, atomically.
func writeMarker(path string, m *Marker) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode store marker: %w", err)
	}
	if err := writeFileAtomic(MarkerPath(path), append(data, '\n')); err != nil {
		return fmt.Errorf("write store marker: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path through a synced temporary file in the
// same directory and a rename, then syncs the directory, so path holds
// either its old content or all of data.
func writeFileAtomic(path string, data []byte) error {
	return replaceFile(path, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// replaceFile creates path's content with fill in a temporary file beside
// it, syncs it, renames it over path and syncs the directory.
func replaceFile(path string, fill func(*os.File) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename or create in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
