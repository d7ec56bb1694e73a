package sdk

// HTTPHeader is an HTTP header: names in canonical form (Content-Type) to
// their values, as net/http's Header, which converts to it
// (sdk.HTTPHeader(h)). The SDK has its own so that a plugin that never
// imports net/http does not link it: net/http brings crypto/tls and
// several megabytes of machine code into every plugin.
type HTTPHeader map[string][]string

// Add appends value to name's values.
func (h HTTPHeader) Add(name, value string) {
	name = CanonicalHeaderName(name)
	h[name] = append(h[name], value)
}

// Set replaces name's values with value.
func (h HTTPHeader) Set(name, value string) { h[CanonicalHeaderName(name)] = []string{value} }

// Get returns name's first value, "" when it has none.
func (h HTTPHeader) Get(name string) string {
	if v := h[CanonicalHeaderName(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns name's values.
func (h HTTPHeader) Values(name string) []string { return h[CanonicalHeaderName(name)] }

// Del removes name.
func (h HTTPHeader) Del(name string) { delete(h, CanonicalHeaderName(name)) }

// CanonicalHeaderName returns name with its first letter and each letter
// after a '-' in upper case and the rest in lower case, as net/http
// canonicalizes; a name with a character other than a letter, digit or
// '-' is returned unchanged.
func CanonicalHeaderName(name string) string {
	upper := true
	canonical := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z':
			canonical = canonical && !upper
		case c >= 'A' && c <= 'Z':
			canonical = canonical && upper
		case c >= '0' && c <= '9', c == '-':
		default:
			return name
		}
		upper = c == '-'
	}
	if canonical {
		return name
	}
	b := []byte(name)
	upper = true
	for i, c := range b {
		if upper && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		} else if !upper && c >= 'A' && c <= 'Z' {
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return string(b)
}
