package runtime

import (
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// FuzzDecodePod: any stored bytes either decode to a pod whose spec can
// be checked and translated, or are refused with an error; nothing
// panics.
func FuzzDecodePod(f *testing.F) {
	f.Add([]byte(`{"metadata":{"name":"a","uid":"u"},"spec":{"containers":[{"name":"c","image":"x","resources":{"limits":{"memory":"1Gi"}}}]}}`))
	f.Add([]byte(`{"metadata":{"uid":"u"},"spec":{"volumes":[{"name":"v"}],"containers":[{"name":"c","env":[{"name":"E","valueFrom":{}}]}]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pod, err := decodePod(data)
		if err != nil {
			return
		}
		unsupported(pod)
		qosClass(pod)
		sandboxConfig(pod, 0, "/logs")
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			resources(c)
			containerConfig(pod, c, 0, c.Image, nil, nil)
		}
	})
}

// FuzzTokenReply: any answer meta gives to a token query is read as a
// token with its expiry, or refused with an error; nothing panics.
func FuzzTokenReply(f *testing.F) {
	f.Add("response", []byte(`{"spec":{"expirationSeconds":3607},"status":{"token":"t","expirationTimestamp":"2030-01-01T00:00:00Z"}}`))
	f.Add("response", []byte(`["{\"status\":{}}"]`))
	f.Add("response", []byte(`{"Object":null,"Err":{}}`))
	f.Add("error", []byte(`timeout`))
	f.Fuzz(func(t *testing.T, op string, content []byte) {
		tr, err := tokenReply(abi.Message{Route: abi.Route{Operation: op}, Content: content})
		if err == nil {
			if tr.Status.Token == "" || tr.Status.ExpirationTimestamp.IsZero() {
				t.Fatalf("accepted a token answer without a token or expiry: %s", content)
			}
			refreshDue(tr, time.Now())
		}
	})
}
