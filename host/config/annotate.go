package config

import "go.yaml.in/yaml/v3"

// defaultComments are the comments `edgehost config default` puts above
// keys: the settings that are off by default, written out (commented) so
// an operator sees them where they go. Each path ends at the key the
// comment goes above.
var defaultComments = []struct {
	path    []string
	comment string
}{
	{[]string{"modules", "eventbus", "mode"}, `embedded: the built-in broker on embedded.address. external: a client of the broker at
external.url instead (on a KubeEdge node whose mosquitto holds 1883: mode: external,
url: tcp://127.0.0.1:1883). both: the two, bridged. See docs/eventbus.md.`},
	{[]string{"modules", "eventbus", "embedded", "maxInflight"}, `TLS only, with the broker's certificate; with caFile clients must show a certificate it signed:
tls:
  certFile: /etc/edgehost/broker.crt
  keyFile: /etc/edgehost/broker.key
  caFile: /etc/edgehost/clients-ca.crt
Only these credentials connect (none set: anyone may; refusals are logged):
users:
  - username: mapper
    password: change-me
What clients may read and write (none set: every topic); rules add up, "" is anyone:
acl:
  - username: mapper
    topic: $hw/events/device/#
    read: true
    write: true
  - topic: $hw/events/device/+/twin/update/document
    read: true`},
	{[]string{"modules", "eventbus", "external", "clientID"}, `Credentials and TLS for the external broker (ssl://, tls:// or mqtts:// URLs use TLS):
username: edgehost
password: change-me
tls:
  caFile: /etc/edgehost/broker-ca.crt
  certFile: /etc/edgehost/edgehost.crt
  keyFile: /etc/edgehost/edgehost.key`},
}

// annotate puts defaultComments on the document node of a config.
func annotate(doc *yaml.Node) {
	for _, c := range defaultComments {
		if key := findKey(doc, c.path); key != nil {
			key.HeadComment = c.comment
		}
	}
}

// findKey returns the key node at path in n, or nil.
func findKey(n *yaml.Node, path []string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for i, name := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == name {
				if i == len(path)-1 {
					return n.Content[j]
				}
				next = n.Content[j+1]
				break
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return nil
}
