package config

import "time"

// ServiceBus is KubeEdge's servicebus: the cloud's HTTP requests to local
// services, and the local apps' requests to the cloud (docs/servicebus.md).
type ServiceBus struct {
	// Enable turns the module on: cloud requests for {port}:{path} are
	// forwarded to http://127.0.0.1:{port}{path}. On by default; it only
	// serves what comes over the cloud link.
	Enable bool `yaml:"enable"`
	// ClientTimeout bounds one call of a local service (edgecore's 10 s).
	ClientTimeout time.Duration `yaml:"clientTimeout"`
	// MaxBodyBytes caps request and response bodies, both directions
	// (edgecore's 5 MB).
	MaxBodyBytes int `yaml:"maxBodyBytes"`
	// Concurrency bounds the cloud requests served at once; one more is
	// answered 503.
	Concurrency int `yaml:"concurrency"`
	// DefaultRoute is what serves a cloud request no route plugin takes:
	// "native" (built in, edgecore's route) or "plugin" (the first-party
	// route-default plugin, loaded only then).
	DefaultRoute string `yaml:"defaultRoute"`
	// Server is the edge → cloud listener.
	Server ServiceBusServer `yaml:"server"`
}

// ServiceBusServer is the local listener that sends apps' requests to the
// cloud.
type ServiceBusServer struct {
	// Enable turns the listener on; off by default, as in edgecore.
	Enable bool `yaml:"enable"`
	// Address is the listener's host:port.
	Address string `yaml:"address"`
	// Timeout bounds the wait for the cloud's answer (edgecore's
	// servicebus.timeout).
	Timeout time.Duration `yaml:"timeout"`
}

// The values of ServiceBus.DefaultRoute.
const (
	DefaultRouteNative = "native"
	DefaultRoutePlugin = "plugin"
)

// DefaultRoutePluginName is the first-party plugin defaultRoute "plugin"
// loads.
const DefaultRoutePluginName = "route-default"

func defaultServiceBus() ServiceBus {
	return ServiceBus{Enable: true, ClientTimeout: 10 * time.Second, MaxBodyBytes: 5_000_000, Concurrency: 64, DefaultRoute: DefaultRouteNative,
		Server: ServiceBusServer{Address: "127.0.0.1:9060", Timeout: 60 * time.Second}}
}

func (s *ServiceBus) validate(p *problems, path string) {
	if !s.Enable {
		return
	}
	p.positiveDuration(path+".clientTimeout", s.ClientTimeout)
	p.positive(path+".maxBodyBytes", s.MaxBodyBytes)
	p.positive(path+".concurrency", s.Concurrency)
	p.oneOf(path+".defaultRoute", s.DefaultRoute, DefaultRouteNative, DefaultRoutePlugin)
	if s.Server.Enable {
		p.hostPort(path+".server.address", s.Server.Address)
		p.positiveDuration(path+".server.timeout", s.Server.Timeout)
	}
}
