package main

// The decoders of the twin documents (json.go has the rules, scan.go the
// scanner): the documents the plugin receives have a method decodeJSON
// that decodes a whole one as json.Unmarshal does, and each part has a
// decoder method.

// Decoders of whole documents.

func (v *TwinUpdate) decodeJSON(data []byte) error {
	d := decoder{data: data}
	if d.object("an object") {
		for n := 0; d.more(n); n++ {
			switch d.field() {
			case fEventID:
				d.str(&v.EventID)
			case fTimestamp:
				d.int64(&v.Timestamp)
			case fTwin:
				d.twins(&v.Twin)
			default:
				d.skip()
			}
		}
	}
	return d.finish()
}

func (v *BaseMessage) decodeJSON(data []byte) error {
	d := decoder{data: data}
	if d.object("an object") {
		for n := 0; d.more(n); n++ {
			switch d.field() {
			case fEventID:
				d.str(&v.EventID)
			case fTimestamp:
				d.int64(&v.Timestamp)
			default:
				d.skip()
			}
		}
	}
	return d.finish()
}

func (v *StateUpdate) decodeJSON(data []byte) error {
	d := decoder{data: data}
	if d.object("an object") {
		for n := 0; d.more(n); n++ {
			switch d.field() {
			case fEventID:
				d.str(&v.EventID)
			case fTimestamp:
				d.int64(&v.Timestamp)
			case fState:
				d.str(&v.State)
			default:
				d.skip()
			}
		}
	}
	return d.finish()
}

func (v *MembershipUpdate) decodeJSON(data []byte) error {
	d := decoder{data: data}
	if d.object("an object") {
		for n := 0; d.more(n); n++ {
			switch d.field() {
			case fEventID:
				d.str(&v.EventID)
			case fTimestamp:
				d.int64(&v.Timestamp)
			case fAddedDevices:
				d.devices(&v.AddDevices)
			case fRemovedDevices:
				d.devices(&v.RemoveDevices)
			default:
				d.skip()
			}
		}
	}
	return d.finish()
}

func (v *MembershipDetail) decodeJSON(data []byte) error {
	d := decoder{data: data}
	if d.object("an object") {
		for n := 0; d.more(n); n++ {
			switch d.field() {
			case fEventID:
				d.str(&v.EventID)
			case fTimestamp:
				d.int64(&v.Timestamp)
			case fDevices:
				d.devices(&v.Devices)
			default:
				d.skip()
			}
		}
	}
	return d.finish()
}

// decodeJSON decodes a stored device. data must be the caller's own and
// never change: the device's strings share its bytes.
func (v *record) decodeJSON(data []byte) error {
	d := decoder{data: data, share: true}
	if d.object("an object") {
		for n := 0; d.more(n); n++ {
			if f := d.field(); f == fOrigin {
				d.str(&v.Origin)
			} else if !d.deviceField(f, &v.Device) {
				d.skip()
			}
		}
	}
	return d.finish()
}

func (v *Config) decodeJSON(data []byte) error {
	d := decoder{data: data}
	if d.object("an object") {
		for n := 0; d.more(n); n++ {
			if d.field() == fNodeName {
				d.str(&v.NodeName)
			} else {
				d.skip()
			}
		}
	}
	return d.finish()
}

// The fields of the documents, by JSON name: what decoder.field returns.
const (
	fUnknown = iota
	fEventID
	fTimestamp
	fTwin
	fState
	fAddedDevices
	fRemovedDevices
	fDevices
	fID
	fName
	fDescription
	fLastOnline
	fAttributes
	fOrigin
	fNodeName
	fExpected
	fActual
	fOptional
	fMetadata
	fExpectedVersion
	fActualVersion
	fValue
	fType
	fCloud
	fEdge
)

// fieldNames are the JSON names of the fields, by their constant.
var fieldNames = [...]string{
	fEventID: "event_id", fTimestamp: "timestamp", fTwin: "twin", fState: "state",
	fAddedDevices: "added_devices", fRemovedDevices: "removed_devices", fDevices: "devices",
	fID: "id", fName: "name", fDescription: "description", fLastOnline: "last_online",
	fAttributes: "attributes", fOrigin: "origin", fNodeName: "node_name",
	fExpected: "expected", fActual: "actual", fOptional: "optional", fMetadata: "metadata",
	fExpectedVersion: "expected_version", fActualVersion: "actual_version",
	fValue: "value", fType: "type", fCloud: "cloud", fEdge: "edge",
}

// field names the field the key just read is for: one of the constants
// above, fUnknown for none. A key is a field's name exactly or, as
// encoding/json has it, case-folded; each document takes its own fields
// and skips the rest.
func (d *decoder) field() int {
	switch string(d.key) {
	case "event_id":
		return fEventID
	case "timestamp":
		return fTimestamp
	case "twin":
		return fTwin
	case "state":
		return fState
	case "added_devices":
		return fAddedDevices
	case "removed_devices":
		return fRemovedDevices
	case "devices":
		return fDevices
	case "id":
		return fID
	case "name":
		return fName
	case "description":
		return fDescription
	case "last_online":
		return fLastOnline
	case "attributes":
		return fAttributes
	case "origin":
		return fOrigin
	case "node_name":
		return fNodeName
	case "expected":
		return fExpected
	case "actual":
		return fActual
	case "optional":
		return fOptional
	case "metadata":
		return fMetadata
	case "expected_version":
		return fExpectedVersion
	case "actual_version":
		return fActualVersion
	case "value":
		return fValue
	case "type":
		return fType
	case "cloud":
		return fCloud
	case "edge":
		return fEdge
	}
	for f, name := range fieldNames {
		if name != "" && foldEqual(d.key, name) {
			return f
		}
	}
	return fUnknown
}

// Decoders of the parts. A struct decoder is one for a value (null leaves
// it as it is) or for a pointer (null sets it to nil; another value is
// decoded into what it points to, allocated if nil).

// ptr prepares *pp to take the value ahead: for null it sets *pp to nil
// and reports false; otherwise it allocates *pp if nil and reports true.
func ptr[T any](d *decoder, pp **T) bool {
	if d.peek() == 'n' {
		if d.null() {
			*pp = nil
		}
		return false
	}
	if *pp == nil {
		*pp = new(T)
	}
	return true
}

// twinParts is a decoded property with room for what it points to, so
// that it takes one allocation instead of one per part. A part is handed
// out once; a property that needs more (a key repeated after a null) gets
// the rest from the heap.
type twinParts struct {
	twin                               MsgTwin
	values                             [2]TwinValue
	stamps                             [2]ValueMetadata
	strs                               [2]string
	versions                           [2]TwinVersion
	optional                           bool
	typ                                TypeMetadata
	used                               uint8 // bit per part type: optional, typ
	nValues, nStamps, nStrs, nVersions uint8
}

// part hands out the next of parts, or a new T once they are all out.
func part[T any](parts []T, n *uint8) *T {
	if int(*n) < len(parts) {
		*n++
		return &parts[*n-1]
	}
	return new(T)
}

// twins decodes a twin's properties into *p, adding to the map there.
func (d *decoder) twins(p *map[string]*MsgTwin) {
	if d.peek() == 'n' {
		if d.null() {
			*p = nil
		}
		return
	}
	if !d.object("an object") {
		return
	}
	if *p == nil {
		*p = map[string]*MsgTwin{}
	}
	for n := 0; d.more(n); n++ {
		key := d.keyString()
		var t *MsgTwin
		if d.peek() == 'n' {
			d.null()
		} else {
			parts := new(twinParts)
			t = &parts.twin
			d.msgTwin(parts)
		}
		if d.err == nil {
			(*p)[key] = t
		}
	}
}

func (d *decoder) msgTwin(p *twinParts) {
	if !d.object("an object") {
		return
	}
	v := &p.twin
	for n := 0; d.more(n); n++ {
		var pp **TwinValue
		var vp **TwinVersion
		switch d.field() {
		case fExpected:
			pp = &v.Expected
		case fActual:
			pp = &v.Actual
		case fOptional:
			switch d.peek() {
			case 't', 'f':
				if v.Optional == nil {
					v.Optional = &p.optional
					if p.used&1 != 0 {
						v.Optional = new(bool)
					}
					p.used |= 1
				}
			}
			d.boolPtr(&v.Optional)
		case fMetadata:
			if d.peek() == 'n' {
				if d.null() {
					v.Metadata = nil
				}
				continue
			}
			if v.Metadata == nil {
				v.Metadata = &p.typ
				if p.used&2 != 0 {
					v.Metadata = new(TypeMetadata)
				}
				p.used |= 2
			}
			d.typeMetadata(v.Metadata)
		case fExpectedVersion:
			vp = &v.ExpectedVersion
		case fActualVersion:
			vp = &v.ActualVersion
		default:
			d.skip()
		}
		switch {
		case pp != nil:
			if d.peek() == 'n' {
				if d.null() {
					*pp = nil
				}
				continue
			}
			if *pp == nil {
				*pp = part(p.values[:], &p.nValues)
			}
			d.twinValue(*pp, p)
		case vp != nil:
			if d.peek() == 'n' {
				if d.null() {
					*vp = nil
				}
				continue
			}
			if *vp == nil {
				*vp = part(p.versions[:], &p.nVersions)
			}
			d.twinVersion(*vp)
		}
	}
}

func (d *decoder) twinValue(v *TwinValue, p *twinParts) {
	if !d.object("an object") {
		return
	}
	for n := 0; d.more(n); n++ {
		switch d.field() {
		case fValue:
			if d.peek() == '"' && v.Value == nil {
				v.Value = part(p.strs[:], &p.nStrs)
			}
			d.strPtr(&v.Value)
		case fMetadata:
			if d.peek() == 'n' {
				if d.null() {
					v.Metadata = nil
				}
				continue
			}
			if v.Metadata == nil {
				v.Metadata = part(p.stamps[:], &p.nStamps)
			}
			if d.object("an object") {
				for n := 0; d.more(n); n++ {
					if d.field() == fTimestamp {
						d.int64(&v.Metadata.Timestamp)
					} else {
						d.skip()
					}
				}
			}
		default:
			d.skip()
		}
	}
}

func (d *decoder) typeMetadata(v *TypeMetadata) {
	if !d.object("an object") {
		return
	}
	for n := 0; d.more(n); n++ {
		if d.field() == fType {
			d.str(&v.Type)
		} else {
			d.skip()
		}
	}
}

func (d *decoder) twinVersion(v *TwinVersion) {
	if !d.object("an object") {
		return
	}
	for n := 0; d.more(n); n++ {
		switch d.field() {
		case fCloud:
			d.int64(&v.Cloud)
		case fEdge:
			d.int64(&v.Edge)
		default:
			d.skip()
		}
	}
}

// devices decodes a list of devices into *p as encoding/json does: into
// the elements already there, if any.
func (d *decoder) devices(p *[]Device) {
	if d.peek() == 'n' {
		if d.null() {
			*p = nil
		}
		return
	}
	if !d.array("an array") {
		return
	}
	s := *p
	i := 0
	for ; d.elem(i); i++ {
		if i == cap(s) {
			s = append(s, Device{})
		} else if i >= len(s) {
			s = s[:i+1]
		}
		if d.object("an object") {
			for n := 0; d.more(n); n++ {
				if !d.deviceField(d.field(), &s[i]) {
					d.skip()
				}
			}
		}
	}
	if i < len(s) {
		s = s[:i]
	}
	if i == 0 {
		s = []Device{}
	}
	*p = s
}

// deviceField decodes the member just read, for field f, into v if f is
// one of Device's, and reports whether it was.
func (d *decoder) deviceField(f int, v *Device) bool {
	switch f {
	case fID:
		d.str(&v.ID)
	case fName:
		d.str(&v.Name)
	case fDescription:
		d.str(&v.Description)
	case fState:
		d.str(&v.State)
	case fLastOnline:
		d.str(&v.LastOnline)
	case fAttributes:
		d.attributes(&v.Attributes)
	case fTwin:
		d.twins(&v.Twin)
	default:
		return false
	}
	return true
}

// attributes decodes a device's attributes into *p, adding to the map
// there.
func (d *decoder) attributes(p *map[string]*MsgAttr) {
	if d.peek() == 'n' {
		if d.null() {
			*p = nil
		}
		return
	}
	if !d.object("an object") {
		return
	}
	if *p == nil {
		*p = map[string]*MsgAttr{}
	}
	for n := 0; d.more(n); n++ {
		key := d.keyString()
		var a *MsgAttr
		if ptr(d, &a) && d.object("an object") {
			for n := 0; d.more(n); n++ {
				switch d.field() {
				case fValue:
					d.str(&a.Value)
				case fOptional:
					d.boolPtr(&a.Optional)
				case fMetadata:
					if ptr(d, &a.Metadata) {
						d.typeMetadata(a.Metadata)
					}
				default:
					d.skip()
				}
			}
		}
		if d.err == nil {
			(*p)[key] = a
		}
	}
}
