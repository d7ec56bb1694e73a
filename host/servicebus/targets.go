package servicebus

import (
	"fmt"
	"strings"
	"sync"

	"github.com/edgehost/edgehost/host/store"
	bolt "go.etcd.io/bbolt"
)

// targets is the allow-list of edge → cloud target URLs the cloud keeps
// with start and stop, persisted (as edgecore persists its rows) when a
// store is given.
type targets struct {
	ns   *store.Namespace
	mu   sync.RWMutex
	urls map[string]bool
}

func newTargets(st *store.Store) *targets {
	t := &targets{urls: map[string]bool{}}
	if st != nil {
		t.ns = st.Namespace("servicebus", "targets")
	}
	return t
}

// load reads the persisted targets.
func (t *targets) load() error {
	if t.ns == nil {
		return nil
	}
	urls := map[string]bool{}
	err := t.ns.View(func(b *bolt.Bucket) error {
		return b.ForEach(func(k, _ []byte) error {
			urls[string(k)] = true
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("servicebus: load target urls: %w", err)
	}
	t.mu.Lock()
	t.urls = urls
	t.mu.Unlock()
	return nil
}

func (t *targets) add(url string) error {
	url = strings.TrimSpace(url)
	if url == "" {
		return fmt.Errorf("start: empty target url")
	}
	if t.ns != nil {
		if err := t.ns.Update(func(b *bolt.Bucket) error { return b.Put([]byte(url), []byte{1}) }); err != nil {
			return err
		}
	}
	t.mu.Lock()
	t.urls[url] = true
	t.mu.Unlock()
	return nil
}

func (t *targets) remove(url string) error {
	url = strings.TrimSpace(url)
	if t.ns != nil {
		if err := t.ns.Update(func(b *bolt.Bucket) error { return b.Delete([]byte(url)) }); err != nil {
			return err
		}
	}
	t.mu.Lock()
	delete(t.urls, url)
	t.mu.Unlock()
	return nil
}

func (t *targets) allowed(url string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.urls[strings.TrimSpace(url)]
}

func (t *targets) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.urls)
}
