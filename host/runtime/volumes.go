package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// tokenSource returns the token of a pod's projected serviceAccountToken
// source, or an error naming why there is none (tokens.token).
type tokenSource func(pod *v1.Pod, src *v1.ServiceAccountTokenProjection) (string, error)

// objectLookup returns the data of the configmap or secret (typ) ns/name
// as strings (a secret's decoded), or an error naming what is missing.
type objectLookup func(typ, ns, name string) (map[string]string, error)

// errObjectMissing is the error of a configmap or secret not stored.
var errObjectMissing = errors.New("not found")

// storeLookup reads configmaps and secrets from the store.
func storeLookup(st Store) objectLookup {
	return func(typ, ns, name string) (map[string]string, error) {
		o, found, err := st.Get(ns + "/" + typ + "/" + name)
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", typ, ns, name, err)
		}
		if !found {
			return nil, fmt.Errorf("%s %q %w", typ, name, errObjectMissing)
		}
		out := map[string]string{}
		switch typ {
		case "configmap":
			var cm v1.ConfigMap
			if err := json.Unmarshal(o.Content, &cm); err != nil {
				return nil, fmt.Errorf("configmap %s/%s: %w", ns, name, err)
			}
			for k, v := range cm.Data {
				out[k] = v
			}
			for k, v := range cm.BinaryData {
				out[k] = string(v)
			}
		case "secret":
			var s v1.Secret
			if err := json.Unmarshal(o.Content, &s); err != nil {
				return nil, fmt.Errorf("secret %s/%s: %w", ns, name, err)
			}
			for k, v := range s.Data {
				out[k] = string(v)
			}
			for k, v := range s.StringData {
				out[k] = v
			}
		}
		return out, nil
	}
}

// prepareVolumes makes the pod's volumes on the host under dir and
// returns each one's host path by name. emptyDirs are made once;
// configMap and secret volumes are written as files, again whenever
// their object changed (an unchanged file is not rewritten). hostPath
// volumes are used as they are, made first when their type says so. token
// gives projected serviceAccountToken sources their token.
func prepareVolumes(pod *v1.Pod, dir, hostIP string, lookup objectLookup, token tokenSource) (map[string]string, error) {
	paths := map[string]string{}
	for i, v := range pod.Spec.Volumes {
		where := fmt.Sprintf("spec.volumes[%d] (%s)", i, v.Name)
		switch {
		case v.HostPath != nil:
			p := v.HostPath.Path
			if !filepath.IsAbs(p) {
				return nil, fmt.Errorf("%s: hostPath.path %q is not absolute", where, p)
			}
			if err := checkHostPath(p, v.HostPath.Type); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			paths[v.Name] = p
		case v.EmptyDir != nil:
			p := filepath.Join(dir, "volumes", "empty-dir", v.Name)
			if err := os.MkdirAll(p, 0o777); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			paths[v.Name] = p
		case v.ConfigMap != nil || v.Secret != nil:
			typ, name, items, mode, optional := "configmap", "", []v1.KeyToPath(nil), int32(0o644), false
			if cm := v.ConfigMap; cm != nil {
				name, items, optional = cm.Name, cm.Items, cm.Optional != nil && *cm.Optional
				if cm.DefaultMode != nil {
					mode = *cm.DefaultMode
				}
			} else {
				typ, name, items, optional = "secret", v.Secret.SecretName, v.Secret.Items, v.Secret.Optional != nil && *v.Secret.Optional
				if v.Secret.DefaultMode != nil {
					mode = *v.Secret.DefaultMode
				}
			}
			data, err := lookup(typ, pod.Namespace, name)
			if err != nil {
				if !optional || !errors.Is(err, errObjectMissing) {
					return nil, fmt.Errorf("%s: %w", where, err)
				}
				data = map[string]string{}
			}
			files, err := keyFiles(data, items, mode)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			p := filepath.Join(dir, "volumes", typ, v.Name)
			if err := writeFiles(p, files); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			paths[v.Name] = p
		case v.DownwardAPI != nil:
			mode := int32(0o644)
			if v.DownwardAPI.DefaultMode != nil {
				mode = *v.DownwardAPI.DefaultMode
			}
			files, err := downwardFiles(pod, v.DownwardAPI.Items, mode, hostIP)
			if err == nil {
				p := filepath.Join(dir, "volumes", "downward-api", v.Name)
				err = writeFiles(p, files)
				paths[v.Name] = p
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		case v.Projected != nil:
			files, err := projectedFiles(pod, v.Projected, lookup, token, hostIP)
			if err == nil {
				p := filepath.Join(dir, "volumes", "projected", v.Name)
				err = writeFiles(p, files)
				paths[v.Name] = p
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
	}
	return paths, nil
}

// volumeFile is one file of a configMap, secret, downwardAPI or
// projected volume.
type volumeFile struct {
	data string
	mode os.FileMode
}

// keyFiles are data's keys (or only items, at their paths and modes) as
// files of mode.
func keyFiles(data map[string]string, items []v1.KeyToPath, mode int32) (map[string]volumeFile, error) {
	out := map[string]volumeFile{}
	if len(items) == 0 {
		for k, v := range data {
			out[k] = volumeFile{v, os.FileMode(mode & 0o777)}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return nil, fmt.Errorf("key %q is not in the object", it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = *it.Mode
		}
		out[it.Path] = volumeFile{v, os.FileMode(m & 0o777)}
	}
	return out, nil
}

// downwardFiles are a downwardAPI volume's (or projection's) items: the
// pod's fields, labels and annotations as kubelet writes them
// (`key="value"` a line, sorted).
func downwardFiles(pod *v1.Pod, items []v1.DownwardAPIVolumeFile, mode int32, hostIP string) (map[string]volumeFile, error) {
	out := map[string]volumeFile{}
	for _, it := range items {
		if it.FieldRef == nil {
			return nil, fmt.Errorf("item %q: only fieldRef is supported", it.Path)
		}
		var v string
		switch it.FieldRef.FieldPath {
		case "metadata.labels":
			v = formatMap(pod.Labels)
		case "metadata.annotations":
			v = formatMap(pod.Annotations)
		default:
			p := fieldValue(pod, hostIP, it.FieldRef.FieldPath)
			if p == nil {
				return nil, fmt.Errorf("item %q: fieldPath %q is not supported", it.Path, it.FieldRef.FieldPath)
			}
			v = *p
		}
		m := mode
		if it.Mode != nil {
			m = *it.Mode
		}
		out[it.Path] = volumeFile{v, os.FileMode(m & 0o777)}
	}
	return out, nil
}

// formatMap is labels or annotations as kubelet's downward API writes
// them.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%s", k, strconv.Quote(m[k]))
	}
	return b.String()
}

// projectedFiles are a projected volume's files from its configMap,
// secret, downwardAPI and serviceAccountToken sources, later sources over
// earlier ones.
func projectedFiles(pod *v1.Pod, pv *v1.ProjectedVolumeSource, lookup objectLookup, token tokenSource, hostIP string) (map[string]volumeFile, error) {
	mode := int32(0o644)
	if pv.DefaultMode != nil {
		mode = *pv.DefaultMode
	}
	out := map[string]volumeFile{}
	for j, src := range pv.Sources {
		var files map[string]volumeFile
		var err error
		switch {
		case src.ConfigMap != nil || src.Secret != nil:
			typ, name, items, optional := "configmap", "", []v1.KeyToPath(nil), false
			if cm := src.ConfigMap; cm != nil {
				name, items, optional = cm.Name, cm.Items, cm.Optional != nil && *cm.Optional
			} else {
				typ, name, items, optional = "secret", src.Secret.Name, src.Secret.Items, src.Secret.Optional != nil && *src.Secret.Optional
			}
			var data map[string]string
			data, err = lookup(typ, pod.Namespace, name)
			if err != nil && optional && errors.Is(err, errObjectMissing) {
				data, err = map[string]string{}, nil
			}
			if err == nil {
				files, err = keyFiles(data, items, mode)
			}
		case src.DownwardAPI != nil:
			files, err = downwardFiles(pod, src.DownwardAPI.Items, mode, hostIP)
		case src.ServiceAccountToken != nil:
			var tok string
			if tok, err = token(pod, src.ServiceAccountToken); err == nil {
				files = map[string]volumeFile{src.ServiceAccountToken.Path: {tok, os.FileMode(mode & 0o777)}}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("projected.sources[%d]: %w", j, err)
		}
		for k, f := range files {
			out[k] = f
		}
	}
	return out, nil
}

// checkHostPath applies a hostPath volume's type.
func checkHostPath(p string, typ *v1.HostPathType) error {
	if typ == nil {
		return nil
	}
	fi, err := os.Stat(p)
	switch *typ {
	case v1.HostPathDirectoryOrCreate:
		if os.IsNotExist(err) {
			return os.MkdirAll(p, 0o755)
		}
	case v1.HostPathFileOrCreate:
		if os.IsNotExist(err) {
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
	case v1.HostPathDirectory:
		if err != nil || !fi.IsDir() {
			return fmt.Errorf("hostPath %q is not a directory", p)
		}
	case v1.HostPathFile:
		if err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("hostPath %q is not a file", p)
		}
	case v1.HostPathUnset:
	default:
		if err != nil {
			return fmt.Errorf("hostPath %q: %w", p, err)
		}
	}
	return nil
}

// writeFiles writes files (by their path in the volume) in dir, and
// removes files no longer in it. A file whose content is unchanged is
// not rewritten.
func writeFiles(dir string, files map[string]volumeFile) error {
	want := map[string]volumeFile{}
	for rel, f := range files {
		clean := path.Clean(rel)
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("item path %q leaves the volume", rel)
		}
		want[clean] = f
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for rel, f := range want {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, []byte(f.data)) {
			if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() == f.mode {
				continue
			}
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(f.data), f.mode); err != nil {
			return err
		}
		// WriteFile's mode is filtered by the umask; the volume's is not.
		if err := os.Chmod(tmp, f.mode); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	}
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if _, ok := want[filepath.ToSlash(rel)]; !ok {
			return os.Remove(p)
		}
		return nil
	})
}

// mounts are c's volume mounts, onto the prepared host paths.
func mounts(pod *v1.Pod, c *v1.Container, paths map[string]string) ([]*runtimeapi.Mount, error) {
	readOnly := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		readOnly[v.Name] = v.ConfigMap != nil || v.Secret != nil || v.Projected != nil || v.DownwardAPI != nil
	}
	var out []*runtimeapi.Mount
	for i, m := range c.VolumeMounts {
		p, ok := paths[m.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMounts[%d]: no volume named %q in spec.volumes", i, m.Name)
		}
		out = append(out, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: p, Readonly: m.ReadOnly || readOnly[m.Name]})
	}
	return out, nil
}
