package runtime

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/host/meta"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// mapStore is a Store of objects by key, for functions that only read.
type mapStore map[string]string

func (s mapStore) Get(key string) (meta.Object, bool, error) {
	v, ok := s[key]
	return meta.Object{Key: key, Content: json.RawMessage(v)}, ok, nil
}
func (s mapStore) List(ns, typ string) ([]meta.Object, error) { return nil, nil }

// secretJSON is a secret of typ holding key = value.
func secretJSON(t *testing.T, name string, typ v1.SecretType, key, value string) string {
	b, err := json.Marshal(v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Type: typ, Data: map[string][]byte{key: []byte(value)}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The pod's pull secrets (dockerconfigjson and the older dockercfg)
// become CRI AuthConfigs, matched to an image by registry host, port and
// path, the most specific first; auth is split into user and password;
// a missing or unusable secret is named, not fatal.
func TestPullSecretsToAuthConfig(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("robot:pa:ss"))
	st := mapStore{
		"default/secret/regcred": secretJSON(t, "regcred", v1.SecretTypeDockerConfigJson, v1.DockerConfigJsonKey,
			`{"auths":{"https://registry.example.com:5000/":{"username":"edge","password":"s3cret"},
			"registry.example.com:5000/team/app":{"auth":"`+auth+`"},
			"*.mirror.example.com":{"identitytoken":"idt"},
			"https://index.docker.io/v1/":{"username":"hub","password":"h"}}}`),
		"default/secret/legacy": secretJSON(t, "legacy", v1.SecretTypeDockercfg, v1.DockerConfigKey, `{"10.0.0.9:5000":{"username":"old","password":"o"}}`),
		"default/secret/opaque": secretJSON(t, "opaque", v1.SecretTypeOpaque, "x", "y"),
		"default/secret/broken": secretJSON(t, "broken", v1.SecretTypeDockerConfigJson, v1.DockerConfigJsonKey, `{"auths":`),
	}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default"}, Spec: v1.PodSpec{ImagePullSecrets: []v1.LocalObjectReference{
		{Name: "regcred"}, {Name: "legacy"}, {Name: "opaque"}, {Name: "broken"}, {Name: "absent"}}}}
	creds, notes := pullSecrets(pod, st)
	if got := strings.Join(notes, "; "); !strings.Contains(got, `imagePullSecret "opaque": type "Opaque" is neither`) ||
		!strings.Contains(got, `imagePullSecret "broken": .dockerconfigjson: unexpected end of JSON input`) || !strings.Contains(got, `imagePullSecret "absent" not found`) {
		t.Errorf("notes: %s", got)
	}
	for image, want := range map[string][]string{
		"registry.example.com:5000/team/app:1.2":      {"robot/pa:ss", "edge/s3cret"},
		"registry.example.com:5000/other/x@sha256:ab": {"edge/s3cret"},
		"registry.example.com/team/app:1":             nil,
		"eu.mirror.example.com/lib/x":                 {"/"},
		"a.eu.mirror.example.com/lib/x":               nil,
		"10.0.0.9:5000/x":                             {"old/o"},
		"busybox":                                     {"hub/h"},
		"library/busybox:1.36":                        {"hub/h"},
		"docker.io/library/busybox":                   {"hub/h"},
		"localhost/busybox:local":                     nil,
	} {
		auths := matchCreds(creds, image)
		var got []string
		for _, a := range auths {
			got = append(got, a.Username+"/"+a.Password)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: credentials %v, want %v", image, got, want)
		}
	}
	if a := matchCreds(creds, "eu.mirror.example.com/x"); a[0].IdentityToken != "idt" || a[0].ServerAddress != "*.mirror.example.com" {
		t.Errorf("identity token entry: %+v", a[0])
	}
	if a := matchCreds(creds, "registry.example.com:5000/team/app"); a[0].Auth != auth {
		t.Errorf("auth not passed on: %+v", a[0])
	}
	bad := mapStore{"default/secret/b": secretJSON(t, "b", v1.SecretTypeDockercfg, v1.DockerConfigKey, `{"r.io":{"auth":"bm9jb2xvbg=="}}`)}
	pod.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: "b"}}
	if _, notes := pullSecrets(pod, bad); len(notes) != 1 || !strings.Contains(notes[0], `registry "r.io": auth is not base64 of user:password`) {
		t.Errorf("bad auth: %v", notes)
	}
}
