package abi

// The mapper contract (SPEC.md section 9): the messages the host sends a
// plugin that declares device protocols, and the JSON their contents and
// replies carry. Both sides use these types; the host fills in the
// requests and reads the replies.

// Route of the messages the host sends a mapper.
const (
	// MapperSource and MapperGroup are the route source and group of
	// every message the host sends a mapper (the daemon's devices module).
	MapperSource = "devices"
	MapperGroup  = "devices"
	// MapperOpRead asks for the values of due properties of one or more
	// devices; resource MapperResourceRead.
	MapperOpRead = "read"
	// MapperOpWrite asks the mapper to set one property of a device to a
	// value; resource "device/{namespace}/{name}".
	MapperOpWrite = "write"
	// MapperOpOpen tells the mapper a device is now bound to it; resource
	// "device/{namespace}/{name}".
	MapperOpOpen = "open"
	// MapperOpClose tells the mapper a device is no longer bound to it;
	// resource "device/{namespace}/{name}".
	MapperOpClose = "close"
	// MapperResourceRead is the resource of a read.
	MapperResourceRead = "devices"
)

// Device states a mapper may report, KubeEdge's.
const (
	StateOnline  = "online"
	StateOffline = "offline"
	StateUnknown = "unknown"
)

// ValidProtocol reports whether p may name a device protocol a mapper
// serves: 1-64 of letters, digits and . _ -, starting and ending with a
// letter or digit (KubeEdge's protocolName, as its mappers name them).
func ValidProtocol(p string) bool {
	if len(p) == 0 || len(p) > 64 || !alnum(p[0]) || !alnum(p[len(p)-1]) {
		return false
	}
	for i := 1; i < len(p)-1; i++ {
		if c := p[i]; !alnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

// MapperDevice is a device as a mapper sees it in open and read: its id,
// its protocol config, and the properties the message is about, with the
// device model's defaults merged under the instance's keys.
type MapperDevice struct {
	// ID is KubeEdge's {namespace}/{name}.
	ID string `json:"id"`
	// Protocol is spec.protocol.protocolName.
	Protocol string `json:"protocol"`
	// ProtocolConfig is spec.protocol.configData.data over the model's
	// protocolConfigData.data; absent when both are empty.
	ProtocolConfig map[string]any `json:"protocolConfig,omitempty"`
	// Properties are the properties concerned: all of them in open, the
	// due ones in read.
	Properties []MapperProperty `json:"properties"`
}

// MapperProperty is one property of a device for its mapper.
type MapperProperty struct {
	Name string `json:"name"`
	// Type is the twin's type of the value: int, float, boolean or string.
	Type string `json:"type"`
	// Visitor is the property's visitors.configData.data over the model
	// property's; absent when both are empty.
	Visitor map[string]any `json:"visitor,omitempty"`
	// CollectCycle is the property's collect cycle in milliseconds, after
	// the host's default.
	CollectCycle int64 `json:"collectCycle"`
}

// MapperRead is the content of a read.
type MapperRead struct {
	Devices []MapperDevice `json:"devices"`
}

// MapperReadReply is the content of the reply to a read: one entry per
// device of the request (a device left out counts as failed).
type MapperReadReply struct {
	Devices []MapperDeviceValues `json:"devices"`
}

// MapperDeviceValues is what a mapper read of one device.
type MapperDeviceValues struct {
	ID string `json:"id"`
	// State is the device's state as the mapper sees it (online, offline,
	// unknown); empty lets the host decide from the values.
	State string `json:"state,omitempty"`
	// Error fails the whole device (it could not be reached, say).
	Error string `json:"error,omitempty"`
	// Properties are the values read, or why each failed.
	Properties []MapperValue `json:"properties,omitempty"`
}

// MapperValue is one property's value, as text in the property's type,
// or its error.
type MapperValue struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
}

// MapperWrite is the content of a write: the device (Properties holds the
// one property written) and the value to set.
type MapperWrite struct {
	Device MapperDevice `json:"device"`
	Value  string       `json:"value"`
}
