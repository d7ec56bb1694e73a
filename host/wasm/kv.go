package wasm

import (
	"slices"
	"strings"
	"sync"
)

// MaxKeyLen is the longest KV key a plugin may use (abi/SPEC.md section 5).
const MaxKeyLen = 1024

// KVOp is one write of a KV.Apply batch: a put of Value at Key, or a delete
// of Key when Delete is set.
type KVOp struct {
	Key    string
	Value  []byte
	Delete bool
}

// KV is one plugin's key-value namespace, handed to Load by the caller.
// Every instance and every version of the plugin must see the same one.
type KV interface {
	// Get returns the value at key and whether it exists. The caller may
	// keep the returned slice.
	Get(key string) ([]byte, bool, error)
	// List returns the keys starting with prefix, in byte order.
	List(prefix string) ([]string, error)
	// Apply performs ops in order as one atomic batch: all or none.
	Apply(ops []KVOp) error
}

// MemKV is an in-memory KV for tests and development. It is safe for
// concurrent use.
type MemKV struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMemKV returns an empty MemKV.
func NewMemKV() *MemKV { return &MemKV{m: map[string][]byte{}} }

// Get implements KV.
func (kv *MemKV) Get(key string) ([]byte, bool, error) {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	v, ok := kv.m[key]
	return slices.Clone(v), ok, nil
}

// List implements KV.
func (kv *MemKV) List(prefix string) ([]string, error) {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	var keys []string
	for k := range kv.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// Apply implements KV.
func (kv *MemKV) Apply(ops []KVOp) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	for _, op := range ops {
		if op.Delete {
			delete(kv.m, op.Key)
		} else {
			kv.m[op.Key] = slices.Clone(op.Value)
		}
	}
	return nil
}

// kvTx buffers the KV writes of one export call: they are visible to the
// call's own reads and committed together when it succeeds. One per
// instance, reused across calls.
type kvTx struct {
	ops    []KVOp
	latest map[string]int // key -> index in ops of its last write
}

func (tx *kvTx) put(key string, val []byte, del bool) {
	if tx.latest == nil {
		tx.latest = map[string]int{}
	}
	tx.latest[key] = len(tx.ops)
	tx.ops = append(tx.ops, KVOp{Key: key, Value: val, Delete: del})
}

// get reads key through the call's own writes, then through the writes
// of earlier calls still on their way to the store.
func (tx *kvTx) get(c *committer, key string) ([]byte, bool, error) {
	if i, ok := tx.latest[key]; ok {
		op := tx.ops[i]
		return op.Value, !op.Delete, nil
	}
	return c.get(key)
}

// list lists the keys under prefix as get sees them.
func (tx *kvTx) list(c *committer, prefix string) ([]string, error) {
	keys, err := c.list(prefix)
	if err != nil || len(tx.latest) == 0 {
		return keys, err
	}
	for k, i := range tx.latest {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		j, found := slices.BinarySearch(keys, k)
		switch {
		case tx.ops[i].Delete && found:
			keys = slices.Delete(keys, j, j+1)
		case !tx.ops[i].Delete && !found:
			keys = slices.Insert(keys, j, k)
		}
	}
	return keys, nil
}

// take hands over the buffered writes and empties tx.
func (tx *kvTx) take() []KVOp {
	ops := tx.ops
	tx.ops = nil
	clear(tx.latest)
	return ops
}

// reset discards the buffered writes.
func (tx *kvTx) reset() {
	if len(tx.ops) == 0 {
		return
	}
	clear(tx.ops)
	tx.ops = tx.ops[:0]
	clear(tx.latest)
}
