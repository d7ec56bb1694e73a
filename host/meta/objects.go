package meta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/edgehost/edgehost/host/store"
	bolt "go.etcd.io/bbolt"
)

// Where meta keeps its objects: bucket "objects" of the store namespace
// "meta", each object under its resource string ({namespace}/{type}/{name},
// edgecore's key), its value a record (record.go).
const (
	StoreNamespace = "meta"
	objectsBucket  = "objects"
)

// objects is meta's part of the store.
type objects struct{ ns *store.Namespace }

func newObjects(st *store.Store) objects { return objects{ns: st.Namespace(StoreNamespace)} }

// errStale is the error of a write or delete whose resource version is
// older than the stored object's.
var errStale = errors.New("stale resource version")

// staleError says which versions a stale write met.
type staleError struct{ got, stored string }

func (e *staleError) Error() string {
	return fmt.Sprintf("resource version %s is older than the stored %s", e.got, e.stored)
}
func (e *staleError) Is(target error) bool { return target == errStale }

// putResult is what put did.
type putResult int

const (
	putApplied   putResult = iota // the object was written
	putDuplicate                  // the same resource version was already stored; nothing written
)

// A stale write is not an error returned inside the transaction: that would
// roll back the whole group commit it shares with other writers and make
// them run again. It writes nothing and reports the stored version.

// put stores content at key with resource version rv, durably, unless the
// stored object's version is the same (putDuplicate) or newer (errStale).
// An empty version on either side is not compared: the cloud is trusted,
// as edgecore trusts it.
func (o objects) put(key, rv string, content []byte) (putResult, error) {
	var result putResult
	var stale string
	err := o.ns.Update(func(b *bolt.Bucket) error {
		result, stale = putApplied, ""
		objs, err := b.CreateBucketIfNotExists([]byte(objectsBucket))
		if err != nil {
			return err
		}
		if old := objs.Get([]byte(key)); old != nil {
			if r, err := decodeRecord(old); err == nil {
				switch c := compareRV(rv, r.RV); {
				case c == 0:
					result = putDuplicate
					return nil
				case c < 0:
					stale = r.RV
					return nil
				}
			}
		}
		return objs.Put([]byte(key), appendRecord(nil, record{RV: rv, Content: content}))
	})
	switch {
	case err != nil:
		return 0, fmt.Errorf("store %s: %w", key, err)
	case stale != "":
		return 0, fmt.Errorf("store %s: %w", key, &staleError{got: rv, stored: stale})
	}
	return result, nil
}

// deleteResult is what del did.
type deleteResult int

const (
	deleted     deleteResult = iota // the object was removed
	absent                          // there was nothing to remove
	uidMismatch                     // a pod of another uid is stored; it stays
)

// del removes the object of res, durably. A stored object newer than rv is
// kept (errStale). For a pod, a uid in the delete must match the stored
// pod's metadata.uid, else the stored pod (a newer incarnation of the same
// name) stays; the pod's podpatch row goes with it, as in edgecore.
func (o objects) del(res Resource, rv, uid string) (deleteResult, error) {
	key := res.Key()
	var result deleteResult
	var stale string
	err := o.ns.Update(func(b *bolt.Bucket) error {
		result, stale = deleted, ""
		objs := b.Bucket([]byte(objectsBucket))
		var old []byte
		if objs != nil {
			old = objs.Get([]byte(key))
		}
		if old == nil {
			result = absent
			return nil
		}
		podUID := ""
		if r, err := decodeRecord(old); err == nil {
			podUID = objectMetaOf(r.Content).UID
			if compareRV(rv, r.RV) < 0 {
				stale = r.RV
				return nil
			}
			if res.Type == "pod" && uid != "" && objectMetaOf(r.Content).UID != uid {
				result = uidMismatch
				return nil
			}
		}
		if err := objs.Delete([]byte(key)); err != nil {
			return err
		}
		if res.Type == "pod" {
			if err := deleteTokens(objs, res.Namespace, podUID); err != nil {
				return err
			}
			return objs.Delete([]byte(res.Namespace + "/podpatch/" + res.Name))
		}
		return nil
	})
	switch {
	case err != nil:
		return 0, fmt.Errorf("delete %s: %w", key, err)
	case stale != "":
		return 0, fmt.Errorf("delete %s: %w", key, &staleError{got: rv, stored: stale})
	}
	return result, nil
}

// Object is one stored object, as Get and List return it.
type Object struct {
	// Key is the resource string the object is stored under.
	Key string `json:"key"`
	// ResourceVersion is the version it was stored with; empty if the
	// cloud sent none.
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// Content is the object as the cloud sent it.
	Content json.RawMessage `json:"content"`
}

// get returns the object at key.
func (o objects) get(key string) (Object, bool, error) {
	var obj Object
	var found bool
	err := o.ns.View(func(b *bolt.Bucket) error {
		objs := b.Bucket([]byte(objectsBucket))
		if objs == nil {
			return nil
		}
		v := objs.Get([]byte(key))
		if v == nil {
			return nil
		}
		r, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		obj, found = Object{Key: key, ResourceVersion: r.RV, Content: bytes.Clone(r.Content)}, true
		return nil
	})
	return obj, found, err
}

// list returns the stored objects of type typ (every object when typ is
// empty) whose key starts with prefix, in key order. A record that does not
// decode is skipped and counted in bad, so one damaged row does not hide
// the others.
func (o objects) list(typ, prefix string) (objs []Object, bad int, err error) {
	err = o.ns.View(func(b *bolt.Bucket) error {
		bk := b.Bucket([]byte(objectsBucket))
		if bk == nil {
			return nil
		}
		c := bk.Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
			if typ != "" && typeOfKey(k) != typ {
				continue
			}
			r, err := decodeRecord(v)
			if err != nil {
				bad++
				continue
			}
			objs = append(objs, Object{Key: string(k), ResourceVersion: r.RV, Content: bytes.Clone(r.Content)})
		}
		return nil
	})
	return objs, bad, err
}

// typeOfKey returns the type token of a stored key, the text between its
// first and second slash.
func typeOfKey(k []byte) string {
	i := bytes.IndexByte(k, '/')
	if i < 0 {
		return ""
	}
	rest := k[i+1:]
	if j := bytes.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return string(rest)
}

// compareRV compares resource versions a and b as the unsigned integers
// Kubernetes makes them: -1 if a is older, 0 if the same, 1 if newer. An
// empty or non-numeric version on either side compares as newer, so it is
// applied (ParseRV has refused non-numeric ones from the cloud).
func compareRV(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case a == "" || b == "" || errA != nil || errB != nil:
		return 1
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// objectMeta is the part of a Kubernetes object's metadata meta reads.
type objectMeta struct {
	UID             string `json:"uid"`
	ResourceVersion string `json:"resourceVersion"`
}

// objectMetaOf returns the metadata of a stored object, empty if it has
// none or does not parse.
func objectMetaOf(content []byte) objectMeta {
	var o struct {
		Metadata objectMeta `json:"metadata"`
	}
	_ = json.Unmarshal(content, &o)
	return o.Metadata
}

// deleteTokens removes the service account tokens of namespace ns bound
// to the pod uid, which is being deleted (edgecore's
// DeleteServiceAccountToken).
func deleteTokens(objs *bolt.Bucket, ns, uid string) error {
	if uid == "" {
		return nil
	}
	prefix := []byte(ns + "/" + TokenType + "/")
	var doomed [][]byte
	c := objs.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if r, err := decodeRecord(v); err == nil && tokenBoundTo(r.Content, uid) {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	for _, k := range doomed {
		if err := objs.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
