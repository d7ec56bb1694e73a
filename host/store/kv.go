package store

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// MaxKeyLen is the longest plugin KV key, in bytes.
const MaxKeyLen = 1024

// KVOp is one write in a KV.Apply batch: a put of Value at Key, or a delete
// of Key when Delete is set.
type KVOp struct {
	Key    string
	Value  []byte
	Delete bool
}

// KV is one plugin's key-value namespace, the store behind the plugin KV
// capability. Keys are at most MaxKeyLen bytes and never empty; values may
// be empty.
type KV struct {
	ns     *Namespace
	plugin string
}

// PluginKV returns the KV namespace of the named plugin, kept under the
// buckets plugins/kv/<plugin>. Namespaces of different plugins never see
// each other's keys.
func (s *Store) PluginKV(plugin string) *KV {
	return &KV{ns: s.Namespace("plugins", "kv", plugin), plugin: plugin}
}

// Get returns a copy of the value at key and whether it exists.
func (kv *KV) Get(key string) ([]byte, bool, error) {
	var val []byte
	var found bool
	err := kv.ns.View(func(b *bolt.Bucket) error {
		if v := b.Get([]byte(key)); v != nil {
			val, found = bytes.Clone(v), true
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("kv get %q for plugin %q: %w", key, kv.plugin, err)
	}
	return val, found, nil
}

// List returns the keys starting with prefix, in byte order.
func (kv *KV) List(prefix string) ([]string, error) {
	var keys []string
	p := []byte(prefix)
	err := kv.ns.View(func(b *bolt.Bucket) error {
		c := b.Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if v != nil { // nil value: a nested bucket, not a key
				keys = append(keys, string(k))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kv list %q for plugin %q: %w", prefix, kv.plugin, err)
	}
	return keys, nil
}

// Apply performs ops in order as one atomic, durable batch: when it returns
// nil every op is on disk; when it returns an error none is. Concurrent
// Apply calls share fsyncs (see the group commit note in commit.go).
func (kv *KV) Apply(ops []KVOp) error {
	if len(ops) == 0 {
		return nil
	}
	for i, op := range ops {
		if err := checkKey(op.Key); err != nil {
			return fmt.Errorf("kv apply for plugin %q: op %d: %w", kv.plugin, i, err)
		}
	}
	err := kv.ns.Update(func(b *bolt.Bucket) error {
		for _, op := range ops {
			var err error
			if op.Delete {
				err = b.Delete([]byte(op.Key))
			} else {
				err = b.Put([]byte(op.Key), nonNil(op.Value))
			}
			if err != nil {
				return fmt.Errorf("key %.64q: %w", op.Key, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kv apply for plugin %q: %w", kv.plugin, err)
	}
	return nil
}

// checkKey rejects keys bbolt or the KV contract would refuse, before any
// transaction starts, so a bad batch never costs a group a retry.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("key %q: empty key", key)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("key %.64q...: %d bytes, longer than %d", key, len(key), MaxKeyLen)
	}
	return nil
}

// nonNil maps a nil value to an empty one: bbolt stores both as empty, and
// an empty value must still read back as present.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}
