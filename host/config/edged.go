package config

import (
	"strings"
	"time"
)

// Edged is the container runtime module (KubeEdge's edged): it runs the
// cloud's pods on a CRI runtime (docs/runtime.md). It is off by default:
// a node without containerd (or CRI-O) would otherwise start with a
// module that cannot work.
type Edged struct {
	// Enable turns the runtime module on.
	Enable bool `yaml:"enable"`
	// CRIEndpoint is the CRI runtime's socket, unix://PATH.
	CRIEndpoint string `yaml:"criEndpoint"`
	// PodDir holds the pods' emptyDir and configMap/secret volumes and
	// their logs; <dataDir>/pods when empty.
	PodDir string `yaml:"podDir"`
	// SyncPeriod is how often every pod is compared with what the runtime
	// has (kubelet's PLEG relists every second).
	SyncPeriod time.Duration `yaml:"syncPeriod"`
	// CallTimeout bounds one CRI call (kubelet's runtimeRequestTimeout).
	CallTimeout time.Duration `yaml:"callTimeout"`
	// RestartBackoff is the first wait before restarting a container that
	// exited again; it doubles per restart up to MaxRestartBackoff
	// (kubelet's 10 s and 5 min).
	RestartBackoff    time.Duration `yaml:"restartBackoff"`
	MaxRestartBackoff time.Duration `yaml:"maxRestartBackoff"`
	// NodeLeaseDuration is the node lease's leaseDurationSeconds; the
	// lease is renewed every quarter of it (kubelet's 40 s, so 10 s).
	NodeLeaseDuration time.Duration `yaml:"nodeLeaseDuration"`
}

func defaultEdged() Edged {
	return Edged{CRIEndpoint: "unix:///run/containerd/containerd.sock", SyncPeriod: time.Second, CallTimeout: 2 * time.Minute,
		RestartBackoff: 10 * time.Second, MaxRestartBackoff: 5 * time.Minute, NodeLeaseDuration: 40 * time.Second}
}

func (e *Edged) validate(p *problems, path string) {
	if !e.Enable {
		return
	}
	if sock, ok := strings.CutPrefix(e.CRIEndpoint, "unix://"); !ok || sock == "" {
		p.add(path+".criEndpoint", "must be unix:///path/to/socket, got %q", e.CRIEndpoint)
	} else {
		p.absPath(path+".criEndpoint", sock)
	}
	if e.PodDir != "" {
		p.absPath(path+".podDir", e.PodDir)
	}
	p.positiveDuration(path+".syncPeriod", e.SyncPeriod)
	p.positiveDuration(path+".callTimeout", e.CallTimeout)
	p.positiveDuration(path+".restartBackoff", e.RestartBackoff)
	if e.MaxRestartBackoff < e.RestartBackoff {
		p.add(path+".maxRestartBackoff", "must be at least restartBackoff (%s), got %s", e.RestartBackoff, e.MaxRestartBackoff)
	}
	if e.NodeLeaseDuration < time.Second || e.NodeLeaseDuration%time.Second != 0 {
		p.add(path+".nodeLeaseDuration", "must be whole seconds, at least 1s (the Lease's leaseDurationSeconds), got %s", e.NodeLeaseDuration)
	}
}
