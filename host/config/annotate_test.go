package config

import (
	"regexp"
	"strings"
	"testing"
)

// The commented broker settings in `config default` are valid YAML for the
// keys they sit among: uncommented, they parse, validate and set TLS, users,
// the ACL and the external broker's credentials.
func TestDefaultCommentsUncommentToValidConfig(t *testing.T) {
	out, err := Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# tls:", "# users:", "# acl:", "# username: edgehost", "mode: external"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("config default lacks %q", want)
		}
	}
	example := regexp.MustCompile(`(?m)^(\s*)# ((?:tls:|users:|acl:|username:|password:|  |- ).*)$`)
	uncommented := example.ReplaceAllString(string(out), "$1$2")
	c, err := Parse([]byte(uncommented), "uncommented")
	if err != nil {
		t.Fatalf("uncommented config default: %v\n%s", err, uncommented)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("uncommented config default: %v", err)
	}
	e, x := c.Modules.EventBus.Embedded, c.Modules.EventBus.External
	if e.TLS == nil || e.TLS.CertFile != "/etc/edgehost/broker.crt" || len(e.Users) != 1 || e.Users[0].Username != "mapper" ||
		len(e.ACL) != 2 || !e.ACL[0].Write || x.Username != "edgehost" || x.TLS == nil || x.TLS.CAFile != "/etc/edgehost/broker-ca.crt" {
		t.Errorf("uncommented settings not taken: embedded %+v external %+v", e, x)
	}
}
