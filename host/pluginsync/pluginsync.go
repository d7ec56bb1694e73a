// Package pluginsync installs, upgrades, rolls back and removes plugins as
// the cloud asks, through the link: the cloud sends an EdgehostPlugin
// object (the package a node should run for one plugin), the metamanager
// stores and acknowledges it and hands it here, and this module fetches
// the package if it must, puts it through the same checks as a local
// install under the remote trust policy, and reports the outcome upstream
// (docs/hub.md, "Plugins from the cloud").
package pluginsync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/meta"
	"github.com/edgehost/edgehost/host/pluginhost"
	"github.com/edgehost/edgehost/host/plugins"
	"github.com/hashicorp/go-hclog"
)

// Names on the bus.
const (
	ModuleName = "pluginsync"
	Group      = meta.PluginGroup
	hubGroup   = meta.HubGroup
)

// Plugins is what the module drives: the plugin host's live operations.
type Plugins interface {
	Info(name string) (api.PluginInfo, error)
	Install(ctx context.Context, file []byte, source string) (api.PluginInfo, error)
	Upgrade(ctx context.Context, file []byte, source string) (api.PluginInfo, error)
	Rollback(ctx context.Context, name string) (api.PluginInfo, error)
	SetEnabled(ctx context.Context, name string, enabled bool) (api.PluginInfo, error)
	Remove(ctx context.Context, name string) error
	List() []api.PluginInfo
}

// Objects lists the objects the metamanager stored.
type Objects interface {
	List(ns, typ string) ([]meta.Object, error)
}

// Config configures the module; the zero value is usable but for its
// interfaces.
type Config struct {
	// Connected reports whether the cloud link is up; packages are only
	// fetched while it is.
	Connected func() bool
	// ChunkTimeout bounds one chunk query (30 s when 0).
	ChunkTimeout time.Duration
	// RetryMax caps the wait between tries of a fetch that failed (30 s
	// when 0).
	RetryMax time.Duration
}

// Module is the cloud's hand on the node's plugins.
type Module struct {
	bus     *bus.Bus
	plugins Plugins
	objects Objects
	cfg     Config
	log     hclog.Logger

	mu    sync.Mutex
	slots map[string]*slot // by plugin name
	work  sync.WaitGroup
}

// slot serialises the work on one plugin: the latest object wins, and an
// object that arrives while an older one is being fetched cancels it.
type slot struct {
	pending *abi.Message
	cancel  context.CancelFunc
}

// New returns the module.
func New(b *bus.Bus, p Plugins, objs Objects, cfg Config, log hclog.Logger) *Module {
	if cfg.ChunkTimeout <= 0 {
		cfg.ChunkTimeout = 30 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.Connected == nil {
		cfg.Connected = func() bool { return true }
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Module{bus: b, plugins: p, objects: objs, cfg: cfg, log: log.Named("pluginsync"), slots: map[string]*slot{}}
}

// Name implements supervisor.Module.
func (m *Module) Name() string { return ModuleName }

// Run implements supervisor.Module: it acts again on the objects stored
// (the daemon may have stopped between an acknowledgement and the install),
// removes cloud-installed plugins whose object is gone, then acts on each
// object the metamanager hands it until ctx ends.
func (m *Module) Run(ctx context.Context, ready func()) error {
	ep, err := m.bus.Register(ModuleName, Group)
	if err != nil {
		return fmt.Errorf("pluginsync: %w", err)
	}
	defer ep.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		m.work.Wait()
	}()
	ready()
	m.resume(ctx)
	for {
		msg, err := ep.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pluginsync: %w", err)
		}
		res, err := meta.ParseResource(msg.Route.Resource, false)
		if err != nil || res.Type != ObjectType {
			m.log.Debug("not an edgehostplugin object; ignored", "resource", msg.Route.Resource, "operation", msg.Route.Operation)
			continue
		}
		m.schedule(ctx, res.Name, msg)
	}
}

// resume schedules the stored objects and removes the plugins the cloud
// installed whose object was deleted.
func (m *Module) resume(ctx context.Context) {
	objs, err := m.objects.List("", ObjectType)
	if err != nil {
		m.log.Warn("stored edgehostplugin objects not read; they are acted on when the cloud sends them again", "error", err)
		return
	}
	wanted := map[string]bool{}
	for _, o := range objs {
		res, err := meta.ParseResource(o.Key, false)
		if err != nil {
			continue
		}
		wanted[res.Name] = true
		m.schedule(ctx, res.Name, abi.Message{
			Header:  abi.Header{ResourceVersion: o.ResourceVersion},
			Route:   abi.Route{Source: "metamanager", Group: "resource", Operation: abi.OpUpdate, Resource: o.Key},
			Content: o.Content})
	}
	for _, in := range m.plugins.List() {
		if in.Origin == pluginhost.OriginInstalled && in.Source == pluginhost.SourceCloud && !wanted[in.Name] {
			m.schedule(ctx, in.Name, abi.Message{Route: abi.Route{Source: "metamanager", Group: "resource",
				Operation: abi.OpDelete, Resource: "default/" + ObjectType + "/" + in.Name}})
		}
	}
}

// schedule queues msg for the plugin called name.
func (m *Module) schedule(ctx context.Context, name string, msg abi.Message) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.slots[name]
	if s != nil {
		s.pending = &msg
		s.cancel() // a newer object replaces what is being fetched
		return
	}
	s = &slot{pending: &msg, cancel: func() {}}
	m.slots[name] = s
	m.work.Go(func() { m.serve(ctx, name, s) })
}

// serve acts on name's objects, the latest first, until none is pending.
func (m *Module) serve(ctx context.Context, name string, s *slot) {
	for {
		m.mu.Lock()
		msg := s.pending
		s.pending = nil
		if msg == nil || ctx.Err() != nil {
			delete(m.slots, name)
			m.mu.Unlock()
			return
		}
		actx, cancel := context.WithCancel(ctx)
		s.cancel = cancel
		m.mu.Unlock()
		m.act(actx, name, *msg)
		cancel()
	}
}

// act does what one message asks for the plugin called name and reports
// the outcome.
func (m *Module) act(ctx context.Context, name string, msg abi.Message) {
	namespace := strings.SplitN(msg.Route.Resource, "/", 2)[0]
	st := Status{Name: name, Namespace: namespace, ResourceVersion: msg.Header.ResourceVersion}
	var err error
	if msg.Route.Operation == abi.OpDelete {
		st.State, err = m.remove(ctx, name)
	} else {
		st.State, err = m.apply(ctx, name, namespace, msg, &st)
	}
	if ctx.Err() != nil {
		return // replaced by a newer object, or shutting down
	}
	if err != nil {
		st.State, st.Error = StateFailed, err.Error()
		if in, ierr := m.plugins.Info(name); ierr == nil {
			describe(&st, in) // what still runs
		}
		m.log.Warn("plugin from the cloud not applied", "plugin", name, "resourceversion", st.ResourceVersion, "error", err)
	} else {
		m.log.Info("plugin from the cloud applied", "plugin", name, "state", st.State, "resourceversion", st.ResourceVersion)
	}
	m.report(ctx, st)
}

// apply makes the plugin run the object's package.
func (m *Module) apply(ctx context.Context, name, namespace string, msg abi.Message, st *Status) (string, error) {
	o, err := ParseObject(msg.Content)
	if err != nil {
		return "", err
	}
	if st.ResourceVersion == "" {
		st.ResourceVersion = o.Metadata.ResourceVersion
	}
	if o.Metadata.Name != name {
		return "", fmt.Errorf("edgehostplugin %q is stored as %q: the names differ", o.Metadata.Name, name)
	}
	cur, err := m.plugins.Info(name)
	exists := err == nil
	if exists && cur.Origin != pluginhost.OriginInstalled && cur.Origin != pluginhost.OriginBuiltin {
		return "", fmt.Errorf("plugin %q comes from the node's %s, where the operator changes it; the cloud cannot", name, cur.Origin)
	}
	installed := exists && cur.Origin == pluginhost.OriginInstalled
	digest := o.Spec.Digest
	file := o.Spec.Package
	if len(file) > 0 {
		sum := sha256.Sum256(file)
		if got := hex.EncodeToString(sum[:]); digest == "" {
			digest = got
		} else if got != digest {
			return "", fmt.Errorf("spec.package's sha256 is %s, not spec.digest %s", got, digest)
		}
	}
	var state string
	var info api.PluginInfo
	switch {
	case installed && cur.PackageDigest == digest:
		state, info = StateUnchanged, cur
	case installed && cur.PreviousDigest == digest:
		state = StateRolledBack
		info, err = m.plugins.Rollback(ctx, name)
	default:
		if file == nil {
			if o.Spec.Size == 0 {
				return "", fmt.Errorf("the node does not hold package %s, and spec.size, needed to fetch it, is not set", digest)
			}
			if file, err = m.fetch(ctx, name, namespace, digest, o.Spec.Size, st); err != nil {
				return "", err
			}
		}
		if err = checkName(file, name); err != nil {
			return "", err
		}
		if installed {
			state = StateUpgraded
			info, err = m.plugins.Upgrade(ctx, file, pluginhost.SourceCloud)
		} else {
			state = StateInstalled
			info, err = m.plugins.Install(ctx, file, pluginhost.SourceCloud)
		}
	}
	if err != nil {
		return "", err
	}
	if e := o.Spec.Enabled; e != nil && *e != info.Enabled {
		if info, err = m.plugins.SetEnabled(ctx, name, *e); err != nil {
			return "", err
		}
	}
	describe(st, info)
	return state, nil
}

// checkName refuses a package whose manifest names another plugin than
// its object.
func checkName(file []byte, name string) error {
	pkg, err := plugins.Parse(file)
	if err != nil {
		return err
	}
	if pkg.Manifest.Name != name {
		return fmt.Errorf("the package is plugin %q, the object %q: the names must agree", pkg.Manifest.Name, name)
	}
	return nil
}

// remove removes a plugin installed through the admin API or the cloud.
func (m *Module) remove(ctx context.Context, name string) (string, error) {
	cur, err := m.plugins.Info(name)
	if errors.Is(err, pluginhost.ErrNotFound) || (err == nil && cur.Origin != pluginhost.OriginInstalled) {
		return StateRemoved, nil // nothing installed under that name
	}
	if err != nil {
		return "", err
	}
	if err := m.plugins.Remove(ctx, name); err != nil {
		return "", err
	}
	return StateRemoved, nil
}

// describe copies what the node now runs into st.
func describe(st *Status, in api.PluginInfo) {
	st.Version, st.Digest, st.Previous, st.PreviousDigest = in.Version, in.PackageDigest, in.Previous, in.PreviousDigest
	st.Enabled, st.PluginState = in.Enabled, in.State
}

// fetch gets the package with digest from the cloud, a chunk per query,
// trying again (with a doubling wait, capped) while the link is down or a
// query fails, until it has the whole package or ctx ends. The first
// failure is reported upstream as state fetching, so the cloud sees why it
// waits.
func (m *Module) fetch(ctx context.Context, name, namespace, digest string, size int64, st *Status) ([]byte, error) {
	buf := make([]byte, 0, size)
	wait := time.Second
	reported := false
	for int64(len(buf)) < size {
		var err error
		if !m.cfg.Connected() {
			err = errors.New("the cloud link is down")
		} else {
			var data []byte
			data, err = m.chunk(ctx, name, namespace, digest, int64(len(buf)), min(ChunkBytes, int(size)-len(buf)), size)
			if err == nil {
				buf = append(buf, data...)
				wait = time.Second
				continue
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var permanent *permanentError
		if errors.As(err, &permanent) {
			return nil, err
		}
		m.log.Debug("package fetch waits", "plugin", name, "digest", digest, "have", len(buf), "of", size, "retry_in", wait, "error", err)
		if !reported {
			reported = true
			pending := *st
			pending.State, pending.Error, pending.Time = StateFetching, err.Error(), time.Time{}
			m.report(ctx, pending)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, m.cfg.RetryMax)
	}
	sum := sha256.Sum256(buf)
	if got := hex.EncodeToString(sum[:]); got != digest {
		return nil, fmt.Errorf("the package fetched has sha256 %s, not %s", got, digest)
	}
	return buf, nil
}

// permanentError is a fetch failure trying again cannot mend.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// chunk asks the cloud for length bytes of the package at offset.
func (m *Module) chunk(ctx context.Context, name, namespace, digest string, offset int64, length int, size int64) ([]byte, error) {
	q, _ := json.Marshal(ChunkQuery{Digest: digest, Offset: offset, Length: length}) // plain struct: always marshals
	msg := abi.Message{Route: abi.Route{Source: ModuleName, Group: "resource", Operation: abi.OpQuery,
		Resource: namespace + "/" + PackageType + "/" + name}, Content: q}
	qctx, cancel := context.WithTimeout(ctx, m.cfg.ChunkTimeout)
	defer cancel()
	r, err := m.bus.RequestGroup(qctx, hubGroup, msg)
	if err != nil {
		return nil, fmt.Errorf("query %d bytes at %d of package %s: %w", length, offset, digest, err)
	}
	if r.Route.Operation == abi.OpError {
		return nil, &permanentError{fmt.Errorf("the cloud refused package %s: %s", digest, bytes.TrimSpace(r.Content))}
	}
	var c Chunk
	if err := json.Unmarshal(r.Content, &c); err != nil {
		return nil, fmt.Errorf("chunk of package %s: %w", digest, err)
	}
	switch {
	case c.Digest != digest || c.Offset != offset:
		return nil, fmt.Errorf("chunk of package %s: the cloud answered for %s at %d", digest, c.Digest, c.Offset)
	case c.Size != size:
		return nil, &permanentError{fmt.Errorf("package %s is %d bytes in the cloud, not spec.size %d", digest, c.Size, size)}
	case len(c.Data) != length:
		return nil, fmt.Errorf("chunk of package %s at %d: %d bytes, asked for %d", digest, offset, len(c.Data), length)
	}
	return c.Data, nil
}

// report sends st upstream through the outbox.
func (m *Module) report(ctx context.Context, st Status) {
	if st.Time.IsZero() {
		st.Time = time.Now().UTC()
	}
	content, _ := json.Marshal(st) // plain struct: always marshals
	msg := abi.Message{Header: abi.Header{ResourceVersion: st.ResourceVersion},
		Route:   abi.Route{Source: ModuleName, Group: "resource", Operation: abi.OpUpdate, Resource: st.Namespace + "/" + StatusType + "/" + st.Name},
		Content: content}
	if err := m.bus.SendToGroup(ctx, hubGroup, msg); err != nil {
		m.log.Debug("plugin status not sent upstream", "plugin", st.Name, "state", st.State, "error", err)
	}
}
