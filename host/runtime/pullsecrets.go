package runtime

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// registryCreds are the credentials of one registry key of a pull secret.
type registryCreds struct {
	// key is the registry as the secret names it, normalised: host[:port]
	// and an optional path, no scheme.
	key  string
	auth *runtimeapi.AuthConfig
}

// dockerConfigEntry is one registry's entry in a dockerconfigjson or
// dockercfg secret.
type dockerConfigEntry struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// pullSecrets reads the pod's imagePullSecrets from the store: each
// kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg secret's
// registries and credentials. A secret that is missing or does not decode
// is skipped with a note, as kubelet pulls without it; the notes are for
// the pull's error.
func pullSecrets(pod *v1.Pod, st Store) (creds []registryCreds, notes []string) {
	for _, ref := range pod.Spec.ImagePullSecrets {
		o, found, err := st.Get(pod.Namespace + "/secret/" + ref.Name)
		if err != nil || !found {
			notes = append(notes, fmt.Sprintf("imagePullSecret %q not found", ref.Name))
			continue
		}
		var s v1.Secret
		if err := json.Unmarshal(o.Content, &s); err != nil {
			notes = append(notes, fmt.Sprintf("imagePullSecret %q: %v", ref.Name, err))
			continue
		}
		c, err := secretCreds(&s)
		if err != nil {
			notes = append(notes, fmt.Sprintf("imagePullSecret %q: %v", ref.Name, err))
			continue
		}
		creds = append(creds, c...)
	}
	return creds, notes
}

// secretCreds are the registries and credentials of a docker config
// secret.
func secretCreds(s *v1.Secret) ([]registryCreds, error) {
	var entries map[string]dockerConfigEntry
	switch s.Type {
	case v1.SecretTypeDockerConfigJson:
		var cfg struct {
			Auths map[string]dockerConfigEntry `json:"auths"`
		}
		if err := json.Unmarshal(secretValue(s, v1.DockerConfigJsonKey), &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", v1.DockerConfigJsonKey, err)
		}
		entries = cfg.Auths
	case v1.SecretTypeDockercfg:
		if err := json.Unmarshal(secretValue(s, v1.DockerConfigKey), &entries); err != nil {
			return nil, fmt.Errorf("%s: %w", v1.DockerConfigKey, err)
		}
	default:
		return nil, fmt.Errorf("type %q is neither %s nor %s", s.Type, v1.SecretTypeDockerConfigJson, v1.SecretTypeDockercfg)
	}
	var out []registryCreds
	for key, e := range entries {
		if e.Auth != "" && e.Username == "" {
			// auth is base64("user:password"), docker's own form.
			b, err := base64.StdEncoding.DecodeString(e.Auth)
			user, pass, ok := strings.Cut(string(b), ":")
			if err != nil || !ok {
				return nil, fmt.Errorf("registry %q: auth is not base64 of user:password", key)
			}
			e.Username, e.Password = user, pass
		}
		out = append(out, registryCreds{key: normalizeRegistry(key), auth: &runtimeapi.AuthConfig{Username: e.Username, Password: e.Password,
			Auth: e.Auth, ServerAddress: key, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}})
	}
	return out, nil
}

// secretValue is a secret's key, from data or stringData.
func secretValue(s *v1.Secret, key string) []byte {
	if v, ok := s.StringData[key]; ok {
		return []byte(v)
	}
	return s.Data[key]
}

// normalizeRegistry is a docker config key without its scheme and
// trailing slash, Docker Hub's names as docker.io.
func normalizeRegistry(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key = strings.TrimSuffix(key, "/")
	switch host, rest, _ := strings.Cut(key, "/"); host {
	case "index.docker.io", "registry-1.docker.io":
		if rest == "v1" || rest == "v2" {
			rest = ""
		}
		key = strings.TrimSuffix("docker.io/"+rest, "/")
	}
	return key
}

// imageRepo is an image reference's registry host and repository path,
// Docker Hub's defaults filled: "busybox" is docker.io/library/busybox.
func imageRepo(image string) string {
	name := image
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	host, rest, found := strings.Cut(name, "/")
	if !found || !strings.ContainsAny(host, ".:") && host != "localhost" {
		if !found {
			return "docker.io/library/" + name
		}
		return "docker.io/" + name
	}
	return host + "/" + rest
}

// matchCreds are the credentials of creds whose registry covers image,
// the most specific key first, as kubelet's keyring orders them: the
// key's host (a leading "*." matches one more label) and port equal the
// image's, and its path, if any, is a prefix of the image's path.
func matchCreds(creds []registryCreds, image string) []*runtimeapi.AuthConfig {
	repo := imageRepo(image)
	host, path, _ := strings.Cut(repo, "/")
	var hits []registryCreds
	for _, c := range creds {
		kh, kp, _ := strings.Cut(c.key, "/")
		if !hostMatches(kh, host) || kp != "" && path != kp && !strings.HasPrefix(path, kp+"/") {
			continue
		}
		hits = append(hits, c)
	}
	slices.SortStableFunc(hits, func(a, b registryCreds) int { return len(b.key) - len(a.key) })
	out := make([]*runtimeapi.AuthConfig, len(hits))
	for i, h := range hits {
		out[i] = h.auth
	}
	return out
}

// hostMatches reports whether a key's host[:port] covers an image's.
func hostMatches(key, host string) bool {
	if key == host {
		return true
	}
	suffix, ok := strings.CutPrefix(key, "*.")
	if !ok {
		return false
	}
	label, rest, found := strings.Cut(host, ".")
	return found && label != "" && rest == suffix
}
