// Package config reads, defaults, validates and prints edgehost.yaml, the
// daemon's one configuration file, in the spirit of KubeEdge's edgecore.yaml:
// a data directory, logging, and a section per module under "modules", each
// with "enable" and its own settings.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultDataDir is where the daemon keeps its state unless told otherwise.
const DefaultDataDir = "/var/lib/edgehost"

// Config is the whole of edgehost.yaml.
type Config struct {
	// DataDir holds the store, the admin socket and the plugins by default.
	DataDir string `yaml:"dataDir"`
	// Log sets the daemon's logging.
	Log Log `yaml:"log"`
	// Store sets the checks and snapshots of the store file (docs/store.md).
	Store Store `yaml:"store"`
	// Modules holds one section per module.
	Modules Modules `yaml:"modules"`
}

// Log sets the level and format of the daemon's log.
type Log struct {
	// Level is one of trace, debug, info, warn, error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Store sets how the daemon guards its store file, <dataDir>/edgehost.db.
type Store struct {
	// CheckTimeout bounds the consistency check at start; a check cut
	// short is logged, and the daemon starts on the checked header.
	CheckTimeout time.Duration `yaml:"checkTimeout"`
	// SnapshotInterval is how often a snapshot is written to
	// <dataDir>/snapshots; 0 turns periodic snapshots off (one is still
	// written at shutdown).
	SnapshotInterval time.Duration `yaml:"snapshotInterval"`
	// SnapshotKeep is how many snapshots are kept; older ones are removed.
	SnapshotKeep int `yaml:"snapshotKeep"`
}

func (s *Store) validate(p *problems, path string) {
	p.positiveDuration(path+".checkTimeout", s.CheckTimeout)
	if s.SnapshotInterval < 0 || (s.SnapshotInterval > 0 && s.SnapshotInterval < time.Second) {
		p.add(path+".snapshotInterval", "must be 0 (off) or at least 1s, got %s", s.SnapshotInterval)
	}
	p.positive(path+".snapshotKeep", s.SnapshotKeep)
}

// Default returns the configuration used for every key a file leaves out.
func Default() *Config {
	c := &Config{
		DataDir: DefaultDataDir,
		Log:     Log{Level: "info", Format: "text"},
		Store:   Store{CheckTimeout: time.Minute, SnapshotInterval: time.Hour, SnapshotKeep: 5},
		Modules: defaultModules(),
	}
	c.fillDerived()
	return c
}

// Load reads and parses the file at path; see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %q: %w", path, err)
	}
	return Parse(data, path)
}

// Parse decodes one YAML document over the defaults, so keys it leaves out
// keep their default values, and validates the result. Paths derived from
// dataDir (the admin socket, the plugin directory) follow the file's dataDir
// unless the file sets them. A plugin's unset limits come from
// modules.plugins.limits. name labels errors, e.g. "edgehost.yaml: line 7:
// unknown key "enabel" in modules.bus"; an empty document gives the defaults.
func Parse(data []byte, name string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %s", name, trimYAML(err.Error()))
	}
	c := Default()
	if len(root.Content) == 0 { // empty or comments only
		return c, nil
	}
	lines := map[int]string{}
	if err := checkKeys(root.Content[0], configType, "", lines); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if hasAlias(&root) {
		// yaml reports an aliased value at its anchor's line, whose key
		// path is not the one being decoded: name lines only.
		clear(lines)
	}
	c.clearDerived()
	// The key walk above names paths; KnownFields also catches unknown keys
	// behind YAML aliases, which the walk does not follow.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("%s: %w", name, decodeError(err, lines))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document", name)
	}
	c.fillDerived()
	c.Modules.Plugins.fill()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// Marshal prints c as YAML that Parse accepts; Marshal(Default()) is the
// full default configuration.
func Marshal(c *Config) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# edgehost configuration. Durations are Go durations (\"2s\", \"1m30s\").\n")
	var doc yaml.Node
	if err := doc.Encode(c); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	annotate(&doc)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	return buf.Bytes(), nil
}

// SetDataDir sets the data directory (the CLI's --data-dir) and moves every
// path still at its default under the old directory to the same place under
// the new one.
func (c *Config) SetDataDir(dir string) {
	old := c.DataDir
	c.DataDir = dir
	for _, d := range c.derived() {
		if *d.field == filepath.Join(old, d.name) {
			*d.field = filepath.Join(dir, d.name)
		}
	}
}

// Validate reports every bad value at once, one line each, naming the key:
// "modules.bus.queueLen: must be > 0, got -1".
func (c *Config) Validate() error {
	var p problems
	p.absPath("dataDir", c.DataDir)
	p.oneOf("log.level", c.Log.Level, "trace", "debug", "info", "warn", "error")
	p.oneOf("log.format", c.Log.Format, "text", "json")
	c.Store.validate(&p, "store")
	for _, s := range c.Modules.sections() {
		s.validate(&p, "modules."+s.name)
	}
	// A plugin publishing to a stuck subscriber waits up to
	// localBackpressure; that must not time its call out.
	if eb, ps := c.Modules.EventBus, c.Modules.Plugins; eb.Enable && ps.Enable && eb.LocalBackpressure >= ps.Limits.CallTimeout {
		p.add("modules.eventbus.localBackpressure", "must be shorter than modules.plugins.limits.callTimeout (%s), got %s",
			ps.Limits.CallTimeout, eb.LocalBackpressure)
	}
	if sb, ps := c.Modules.ServiceBus, c.Modules.Plugins; sb.Enable && sb.DefaultRoute == DefaultRoutePlugin && !(ps.Enable && ps.Builtin) {
		p.add("modules.servicebus.defaultRoute", "%q needs modules.plugins.enable and modules.plugins.builtin (the plugin is built in)", sb.DefaultRoute)
	}
	return p.err()
}

// derivedPath is a path that defaults to a name under dataDir.
type derivedPath struct {
	field *string
	name  string
}

func (c *Config) derived() []derivedPath {
	return []derivedPath{
		{&c.Modules.API.Socket, "admin.sock"},
		{&c.Modules.Plugins.Dir, "plugins"},
		{&c.Modules.Devices.DMISocket, "dmi.sock"},
	}
}

// clearDerived empties the derived paths before decoding, so that after it
// an empty one means "not set by the file".
func (c *Config) clearDerived() {
	for _, d := range c.derived() {
		*d.field = ""
	}
}

func (c *Config) fillDerived() {
	for _, d := range c.derived() {
		if *d.field == "" {
			*d.field = filepath.Join(c.DataDir, d.name)
		}
	}
}
