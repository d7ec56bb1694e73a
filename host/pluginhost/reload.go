package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"

	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/plugins"
)

// ReloadReport is what Reload did: the admin API's document, filled here.
type ReloadReport = api.PluginsReport

// Reload brings the dir plugins in line with the *.wasm files of
// modules.plugins.dir, through the paths a live operation takes: a new file
// is loaded and served as an install is, a changed one is loaded beside the
// running version and swapped in as an upgrade is (the running version
// stays in service when the new one fails), and a removed one is unloaded
// as a remove is. A file that fails is refused with the reason and changes
// nothing. trust, when not nil, becomes the trust store and signature
// policy of the installs that follow; plugins in service keep running.
func (m *Module) Reload(ctx context.Context, trust *config.PluginTrust) (ReloadReport, error) {
	done, err := m.begin()
	if err != nil {
		return ReloadReport{}, err
	}
	defer done()
	rep := ReloadReport{Dir: m.cfg.Dir}
	if trust != nil {
		rep.Trust = m.setTrust(*trust)
	}
	specs, err := m.discover()
	if err != nil {
		return rep, err
	}
	inDir := map[string]bool{}
	for _, d := range specs {
		if d.origin != OriginDir {
			continue
		}
		inDir[d.spec.Name] = true
		m.reloadFile(ctx, d.spec, &rep)
	}
	m.mu.RLock()
	var gone []*hosted
	for _, h := range m.plugins {
		if h.origin == OriginDir && !inDir[h.name] {
			gone = append(gone, h)
		}
	}
	m.mu.RUnlock()
	for _, h := range gone {
		m.drop(h)
		m.log.Info("plugin unloaded: its file left the plugin dir", "plugin", h.name)
		rep.Removed = append(rep.Removed, h.name)
		m.restoreBuiltin(ctx, h.name)
	}
	m.mu.Lock()
	err = m.reroute()
	for _, h := range m.plugins {
		if h.origin == OriginDir && h.cur.Load() != nil {
			rep.Plugins++
		}
	}
	m.mu.Unlock()
	if err != nil {
		return rep, fmt.Errorf("reload plugin dir %q: %w", m.cfg.Dir, err)
	}
	return rep, nil
}

// reloadFile loads the dir plugin spec if its file is new or changed, and
// notes what it did in rep.
func (m *Module) reloadFile(ctx context.Context, spec config.Plugin, rep *ReloadReport) {
	refuse := func(err error) {
		m.log.Warn("plugin file refused; what served before serves on", "file", spec.Path, "error", err)
		rep.Refused = append(rep.Refused, fmt.Sprintf("%s: %v", spec.Path, err))
	}
	code, err := os.ReadFile(spec.Path)
	if err != nil {
		refuse(err)
		return
	}
	sum := sha256.Sum256(code)
	digest := hex.EncodeToString(sum[:])
	m.mu.RLock()
	h := m.find(spec.Name)
	m.mu.RUnlock()
	switch {
	case h == nil, h.origin == OriginBuiltin:
		m.loadNewFile(ctx, spec, h, rep, refuse)
	case h.origin != OriginDir:
		refuse(fmt.Errorf("%w: plugin %q comes from the %s; a file of its name in the plugin dir is not loaded", ErrConflict, spec.Name, h.origin))
	default:
		running := h.cur.Load()
		if running != nil && running.digest == digest {
			rep.Unchanged++
			return
		}
		l, err := m.loadSpec(ctx, h, spec, nil, nil)
		if err != nil {
			if running != nil {
				m.keepInService(h, "reload", short(digest), short(running.digest), err)
			} else {
				m.mu.Lock()
				h.lastError = err.Error()
				m.mu.Unlock()
			}
			refuse(err)
			return
		}
		if err := m.swapIn(h, l, nil); err != nil {
			refuse(err)
			return
		}
		from := "failed"
		if running != nil {
			from = short(running.digest)
		}
		h.logger.Info("plugin upgrade from the plugin dir", "from", from, "to", short(digest))
		rep.Upgraded = append(rep.Upgraded, spec.Name)
	}
}

// loadNewFile loads a plugin new to the dir and serves it, as Install does;
// the built-in plugin of its name (overridden, or a dormant built-in
// mapper) is taken out of service once it loaded.
func (m *Module) loadNewFile(ctx context.Context, spec config.Plugin, overridden *hosted, rep *ReloadReport, refuse func(error)) {
	h := m.newHosted(spec.Name, OriginDir)
	l, err := m.loadSpec(ctx, h, spec, nil, nil)
	if err != nil {
		refuse(err)
		return
	}
	if overridden != nil {
		m.drop(overridden)
		m.log.Info("built-in plugin overridden by the plugin dir", "plugin", spec.Name)
	}
	m.mu.Lock()
	m.dormant = slices.DeleteFunc(m.dormant, func(d dormantMapper) bool { return d.plugin.Name == spec.Name })
	m.mu.Unlock()
	m.add(h, l, nil)
	rep.Loaded = append(rep.Loaded, spec.Name)
}

// setTrust makes t the trust store and policy of the installs that follow
// and says what changed. Called with the operations lock held, as every
// reader of the trust store is.
func (m *Module) setTrust(t config.PluginTrust) *api.TrustReport {
	var keys []plugins.TrustedKey
	for _, k := range t.Keys {
		// config validation has checked the key.
		if pub, err := plugins.ParsePublicKey(k.PublicKey); err == nil {
			keys = append(keys, plugins.TrustedKey{Name: k.Name, PublicKey: pub})
		}
	}
	rep := &api.TrustReport{Keys: len(keys), Revoked: len(t.Revoked), PolicyLocal: t.Policy.Local, PolicyRemote: t.Policy.Remote}
	rep.Added = keysMissing(t.Keys, m.cfg.Trust.Keys)
	rep.Removed = keysMissing(m.cfg.Trust.Keys, t.Keys)
	m.mu.Lock()
	m.trust = plugins.NewTrust(keys, t.Revoked)
	m.cfg.Trust = t
	m.mu.Unlock()
	return rep
}

// keysMissing names the keys of a that b does not hold.
func keysMissing(a, b []config.TrustKey) []string {
	var out []string
	for _, k := range a {
		if !slices.Contains(b, k) {
			out = append(out, k.Name)
		}
	}
	return out
}

// short is the start of a hex digest, enough to tell versions apart in a
// log line.
func short(digest string) string { return digest[:min(len(digest), 12)] }
