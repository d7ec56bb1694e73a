package config

import "time"

// Meta is the metamanager: it stores every object the cloud sends before
// acknowledging it and answers the local modules' queries (docs/meta.md).
type Meta struct {
	// Enable turns the metamanager on; on by default.
	Enable bool `yaml:"enable"`
	// Lanes is how many resources are handled at once. Each lane waits
	// for its write's fsync, so more lanes put more writes in one.
	Lanes int `yaml:"lanes"`
	// RemoteQueryTimeout bounds a query sent to the cloud (edgecore's
	// remoteQueryTimeout); when it passes the requester gets an error.
	RemoteQueryTimeout time.Duration `yaml:"remoteQueryTimeout"`
	// RemoteQueries bounds the queries waiting for the cloud at once.
	RemoteQueries int `yaml:"remoteQueries"`
}

func defaultMeta() Meta {
	return Meta{Enable: true, Lanes: 64, RemoteQueryTimeout: 60 * time.Second, RemoteQueries: 32}
}

func (m *Meta) validate(p *problems, path string) {
	if !m.Enable {
		return
	}
	p.positive(path+".lanes", m.Lanes)
	p.positiveDuration(path+".remoteQueryTimeout", m.RemoteQueryTimeout)
	p.positive(path+".remoteQueries", m.RemoteQueries)
}
