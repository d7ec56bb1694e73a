package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The header check.
//
// bbolt maps the file into memory and trusts its two meta pages: a file
// cut short, or a meta page pointing past the end of the file, makes it
// read past the mapping (SIGBUS, SIGSEGV: fatal, not a panic) or assert
// (invalid freelist page). So before bbolt sees a file, checkHeader reads
// the meta pages with plain reads and refuses any file bbolt could not map
// safely. The layout is bbolt's on-disk format version 2, little-endian
// (internal/common/meta.go and page.go in go.etcd.io/bbolt).

const (
	pageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	metaSize       = 64 // magic .. checksum
	metaSumLen     = 56 // the checksum covers the meta up to itself
	metaPageFlag   = 0x04
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	noFreelist     = ^uint64(0)
	minPageSize    = 512
	maxPageSize    = 1 << 20
	// minPages is what bbolt writes into a new file: two meta pages, an
	// empty freelist and an empty root leaf.
	minPages = 4
)

// Meta is one decoded bbolt meta page.
type Meta struct {
	// PageSize is the file's page size in bytes.
	PageSize uint32
	// Root is the root bucket's page.
	Root uint64
	// Freelist is the freelist's page, or ^0 when none is stored.
	Freelist uint64
	// Pgid is the high-water mark: every page in use is below it.
	Pgid uint64
	// Txid is the transaction that wrote this meta page.
	Txid uint64
}

// DecodeMeta decodes and validates the meta page at the start of page:
// page header, magic, format version and checksum. id is the page's number
// (0 or 1) for the header check.
func DecodeMeta(page []byte, id uint64) (Meta, error) {
	if len(page) < pageHeaderSize+metaSize {
		return Meta{}, fmt.Errorf("meta page %d: %d bytes, need %d", id, len(page), pageHeaderSize+metaSize)
	}
	le := binary.LittleEndian
	m := page[pageHeaderSize:]
	if le.Uint32(m[0:]) != boltMagic {
		return Meta{}, fmt.Errorf("meta page %d: no bbolt magic (not a bbolt file, or the page is overwritten)", id)
	}
	if v := le.Uint32(m[4:]); v != boltVersion {
		return Meta{}, fmt.Errorf("meta page %d: format version %d, want %d", id, v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(m[:metaSumLen])
	if sum := le.Uint64(m[metaSumLen:]); sum != h.Sum64() {
		return Meta{}, fmt.Errorf("meta page %d: checksum mismatch (stored %016x, computed %016x)", id, sum, h.Sum64())
	}
	if pid, flags := le.Uint64(page[0:]), le.Uint16(page[8:]); pid != id || flags != metaPageFlag {
		return Meta{}, fmt.Errorf("meta page %d: page header says page %d with flags %#x, want a meta page", id, pid, flags)
	}
	meta := Meta{
		PageSize: le.Uint32(m[8:]),
		Root:     le.Uint64(m[16:]),
		Freelist: le.Uint64(m[32:]),
		Pgid:     le.Uint64(m[40:]),
		Txid:     le.Uint64(m[48:]),
	}
	ps := meta.PageSize
	if ps < minPageSize || ps > maxPageSize || ps&(ps-1) != 0 {
		return Meta{}, fmt.Errorf("meta page %d: page size %d is not a power of two in %d..%d", id, ps, minPageSize, maxPageSize)
	}
	if meta.Pgid < minPages {
		return Meta{}, fmt.Errorf("meta page %d: high-water mark %d is below the %d pages of an empty store", id, meta.Pgid, minPages)
	}
	if meta.Root < 2 || meta.Root >= meta.Pgid {
		return Meta{}, fmt.Errorf("meta page %d: root bucket page %d outside pages 2..%d", id, meta.Root, meta.Pgid-1)
	}
	if meta.Freelist != noFreelist && (meta.Freelist < 2 || meta.Freelist >= meta.Pgid) {
		return Meta{}, fmt.Errorf("meta page %d: freelist page %d outside pages 2..%d", id, meta.Freelist, meta.Pgid-1)
	}
	return meta, nil
}

// checkHeader reads the meta pages of the file f of size bytes and returns
// the newest valid meta, or an error describing the damage. It refuses a
// file with either meta page damaged: bbolt would silently fall back to the
// other one, which is one commit older, and nothing tells whether the
// damaged page held the last acknowledged commit.
func checkHeader(f io.ReaderAt, size int64) (Meta, error) {
	if size == 0 {
		return Meta{}, errors.New("the file is empty (0 bytes)")
	}
	if size < minPages*minPageSize {
		return Meta{}, fmt.Errorf("the file is %d bytes, shorter than the %d pages of an empty store (truncated?)", size, minPages)
	}
	buf := make([]byte, pageHeaderSize+metaSize)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return Meta{}, fmt.Errorf("read meta page 0: %w", err)
	}
	m0, err := DecodeMeta(buf, 0)
	if err != nil {
		return Meta{}, err
	}
	pageSize := int64(m0.PageSize)
	if size < minPages*pageSize {
		return Meta{}, fmt.Errorf("the file is %d bytes, shorter than the %d pages of %d bytes of an empty store (truncated?)", size, minPages, pageSize)
	}
	if size%pageSize != 0 {
		return Meta{}, fmt.Errorf("the file is %d bytes, not a whole number of %d-byte pages (truncated?)", size, pageSize)
	}
	if _, err := f.ReadAt(buf, pageSize); err != nil {
		return Meta{}, fmt.Errorf("read meta page 1: %w", err)
	}
	m1, err := DecodeMeta(buf, 1)
	if err != nil {
		return Meta{}, err
	}
	if m1.PageSize != m0.PageSize {
		return Meta{}, fmt.Errorf("meta pages disagree on the page size: %d and %d", m0.PageSize, m1.PageSize)
	}
	for i, m := range []Meta{m0, m1} {
		if end := int64(m.Pgid) * pageSize; end > size || end < 0 {
			return Meta{}, fmt.Errorf("meta page %d: the store uses %d pages (%d bytes) but the file is %d bytes (truncated?)", i, m.Pgid, end, size)
		}
	}
	newest := m0
	if m1.Txid > m0.Txid {
		newest = m1
	}
	// bbolt reads these two pages of the newest meta at open, where a
	// damaged one panics while holding the file's lock.
	if err := checkRootAndFreelist(f, newest); err != nil {
		return Meta{}, err
	}
	return newest, nil
}

// Page flags of bbolt's page header.
const (
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
)

// checkRootAndFreelist checks the page headers of m's root bucket and
// freelist: the right page id, the right kind, and (for the freelist)
// overflow and element count that fit in the pages in use.
func checkRootAndFreelist(f io.ReaderAt, m Meta) error {
	le := binary.LittleEndian
	ps := int64(m.PageSize)
	hdr := make([]byte, pageHeaderSize+8)
	if _, err := f.ReadAt(hdr, int64(m.Root)*ps); err != nil {
		return fmt.Errorf("read root page %d: %w", m.Root, err)
	}
	if id, flags := le.Uint64(hdr), le.Uint16(hdr[8:]); id != m.Root || flags != branchPageFlag && flags != leafPageFlag {
		return fmt.Errorf("root page %d: page header says page %d with flags %#x, want a branch or leaf page", m.Root, id, flags)
	}
	if m.Freelist == noFreelist {
		return nil
	}
	if _, err := f.ReadAt(hdr, int64(m.Freelist)*ps); err != nil {
		return fmt.Errorf("read freelist page %d: %w", m.Freelist, err)
	}
	id, flags := le.Uint64(hdr), le.Uint16(hdr[8:])
	count, overflow := uint64(le.Uint16(hdr[10:])), uint64(le.Uint32(hdr[12:]))
	if id != m.Freelist || flags != freelistPageFlag {
		return fmt.Errorf("freelist page %d: page header says page %d with flags %#x, want a freelist page", m.Freelist, id, flags)
	}
	if m.Freelist+overflow >= m.Pgid {
		return fmt.Errorf("freelist page %d: %d overflow pages reach past the %d pages in use", m.Freelist, overflow, m.Pgid)
	}
	if count == 0xFFFF { // the real count is in the first element
		count = le.Uint64(hdr[pageHeaderSize:]) + 1
	}
	if room := (uint64(overflow)+1)*uint64(ps) - pageHeaderSize; count > room/8 {
		return fmt.Errorf("freelist page %d: %d entries do not fit in its %d pages", m.Freelist, count, overflow+1)
	}
	return nil
}

// checkHeaderFile opens path and runs checkHeader on it.
func checkHeaderFile(path string) (Meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return Meta{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Meta{}, err
	}
	return checkHeader(f, fi.Size())
}
