package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/meta"
	authv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
)

// Token rules, kubelet's token manager's (which edgecore's edged keeps):
// a token is fetched again once 80 % of its lifetime has passed or it is
// a day old; until it expires the one held is used when the fetch fails.
const (
	tokenMaxAge         = 24 * time.Hour
	tokenRefreshPercent = 80
	// defaultTokenExpiration is the API server's default expirationSeconds.
	defaultTokenExpiration = 3600
	// tokenQueryTimeout bounds one fetch: past meta's own remote timeout
	// (edgecore's 60 s), so meta's answer, an error naming the cause,
	// comes first.
	tokenQueryTimeout = 90 * time.Second
)

// tokens is the service account tokens of the pods' projected
// serviceAccountToken sources. A token is fetched, as edgecore's edged
// does, by a query to meta (`{ns}/serviceaccounttoken/{sa}`, a
// TokenRequest as the content): meta asks the cloud while it is connected
// and stores the answer under meta.TokenKey, and answers from the store
// while it is not. A fetch runs in the background, one per token at a
// time; the sync that wanted it goes on and the fetch's end asks for
// another sync.
type tokens struct {
	m  *Module
	wg sync.WaitGroup

	mu      sync.Mutex
	ctx     context.Context // the module's run; nil before Run
	entries map[string]*tokenEntry
}

// tokenEntry is one token (a meta.TokenKey) and its fetch.
type tokenEntry struct {
	uid      string               // the pod's
	tr       *authv1.TokenRequest // the newest token held, nil for none
	fetching bool
	asked    time.Time // when the running or last fetch began
	retry    time.Time // no new fetch before
	err      error     // the last fetch's failure
}

func newTokens(m *Module) *tokens { return &tokens{m: m, entries: map[string]*tokenEntry{}} }

// start lets fetches run until ctx ends.
func (t *tokens) start(ctx context.Context) {
	t.mu.Lock()
	t.ctx = ctx
	t.mu.Unlock()
}

// wait waits for the fetches to end, once the module's context ended.
func (t *tokens) wait() { t.wg.Wait() }

// prune forgets the tokens of pods not in desired (their stored rows go
// with the pod's delete in meta).
func (t *tokens) prune(desired map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.entries {
		if !desired[e.uid] && !e.fetching {
			delete(t.entries, k)
		}
	}
}

// tokenRequest is edged's TokenRequest for pod's token of src, as kubelet's
// projected volume asks: the source's audience (the API server's when
// none) and expiry, bound to the pod.
func tokenRequest(pod *v1.Pod, src *v1.ServiceAccountTokenProjection) *authv1.TokenRequest {
	exp := int64(defaultTokenExpiration)
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	tr := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp,
		BoundObjectRef: &authv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}}
	tr.Kind, tr.APIVersion = "TokenRequest", "authentication.k8s.io/v1"
	if src.Audience != "" {
		tr.Spec.Audiences = []string{src.Audience}
	}
	return tr
}

// serviceAccount is the pod's service account, "default" when unset (the
// API server's default).
func serviceAccount(pod *v1.Pod) string {
	if pod.Spec.ServiceAccountName != "" {
		return pod.Spec.ServiceAccountName
	}
	return "default"
}

// token returns the token of pod's src: the one held (or stored) while
// it needs no refresh; else it starts a fetch and returns the one held
// while it has not expired; else an error saying why there is none.
func (t *tokens) token(pod *v1.Pod, src *v1.ServiceAccountTokenProjection) (string, error) {
	sa := serviceAccount(pod)
	tr := tokenRequest(pod, src)
	body, _ := json.Marshal(tr) // a TokenRequest always marshals
	key, err := meta.TokenKey(pod.Namespace, sa, body)
	if err != nil {
		return "", err
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[key]
	if !ok {
		e = &tokenEntry{uid: string(pod.UID)}
		t.entries[key] = e
		// After a restart the store has what the last run fetched.
		if o, found, err := t.m.cfg.Store.Get(key); err == nil && found {
			e.tr, _ = decodeToken(o.Content)
		}
	}
	if e.tr != nil && !refreshDue(e.tr, now) {
		return e.tr.Status.Token, nil
	}
	if !e.fetching && !now.Before(e.retry) && t.ctx != nil && t.ctx.Err() == nil {
		e.fetching, e.asked = true, now
		ctx := t.ctx
		t.wg.Go(func() { t.fetch(ctx, key, pod.Namespace, sa, body) })
	}
	if e.tr != nil && now.Before(e.tr.Status.ExpirationTimestamp.Time) {
		return e.tr.Status.Token, nil
	}
	what := fmt.Sprintf("service account token of %s/%s for the pod", pod.Namespace, sa)
	switch {
	case e.err != nil:
		return "", fmt.Errorf("%s: %w", what, e.err)
	case e.tr != nil:
		return "", fmt.Errorf("%s expired at %s; asked the cloud %s ago for a new one", what,
			e.tr.Status.ExpirationTimestamp.UTC().Format(time.RFC3339), now.Sub(e.asked).Round(time.Second))
	}
	return "", fmt.Errorf("%s: asked the cloud %s ago, waiting for its answer", what, now.Sub(e.asked).Round(time.Second))
}

// fetch asks meta for a token and keeps what comes back; a failure is
// kept to be named in the pod's status, and the next fetch waits the
// restart back-off.
func (t *tokens) fetch(ctx context.Context, key, ns, sa string, body []byte) {
	ctx, cancel := context.WithTimeout(ctx, tokenQueryTimeout)
	defer cancel()
	msg := abi.Message{Route: abi.Route{Source: ModuleName, Group: meta.Group, Operation: abi.OpQuery,
		Resource: ns + "/" + meta.TokenType + "/" + sa}, Content: body}
	reply, err := t.m.bus.RequestGroup(ctx, meta.Group, msg)
	var tr *authv1.TokenRequest
	if err == nil {
		tr, err = tokenReply(reply)
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return
	}
	t.mu.Lock()
	e, ok := t.entries[key]
	if !ok {
		t.mu.Unlock()
		return
	}
	e.fetching = false
	e.retry = time.Now().Add(t.m.cfg.RestartBackoff)
	if err != nil {
		e.err = err
		t.m.report(problemToken, "cannot get a service account token; retrying", "serviceaccount", ns+"/"+sa, "pod_uid", e.uid, "error", err)
	} else {
		e.err, e.tr = nil, tr
		t.m.warned[problemToken].Store(false)
		t.m.log.Debug("service account token fetched", "serviceaccount", ns+"/"+sa, "pod_uid", e.uid, "expires", tr.Status.ExpirationTimestamp.UTC())
	}
	t.mu.Unlock()
	t.m.Kick()
}

// tokenReply reads meta's answer to a token query: the cloud's
// TokenRequest (or an ObjectResp holding it), or, offline, the store's
// answer, an array of the stored value.
func tokenReply(r abi.Message) (*authv1.TokenRequest, error) {
	if r.Route.Operation == abi.OpError {
		return nil, fmt.Errorf("%s", r.Content)
	}
	if len(r.Content) > 0 && r.Content[0] == '[' {
		var values []string
		if err := json.Unmarshal(r.Content, &values); err != nil {
			return nil, fmt.Errorf("meta's answer: %w", err)
		}
		if len(values) == 0 {
			return nil, errors.New("the cloud is not connected and no token is stored for this pod")
		}
		return decodeToken([]byte(values[0]))
	}
	var resp struct {
		Object json.RawMessage
		Err    json.RawMessage
	}
	if json.Unmarshal(r.Content, &resp) == nil && (resp.Object != nil || resp.Err != nil) {
		if len(resp.Err) > 0 && string(resp.Err) != "null" {
			return nil, fmt.Errorf("the cloud refused the token request: %s", resp.Err)
		}
		return decodeToken(resp.Object)
	}
	return decodeToken(r.Content)
}

// decodeToken decodes a TokenRequest with its status, which must hold a
// token and its expiry.
func decodeToken(content []byte) (*authv1.TokenRequest, error) {
	var tr authv1.TokenRequest
	if err := json.Unmarshal(content, &tr); err != nil {
		return nil, fmt.Errorf("token answer: %w", err)
	}
	if tr.Status.Token == "" || tr.Status.ExpirationTimestamp.IsZero() {
		return nil, fmt.Errorf("token answer %.80q has no status.token or status.expirationTimestamp", content)
	}
	return &tr, nil
}

// refreshDue is kubelet's rule: a token is fetched again once 80 % of its
// lifetime has passed, or a day after it was issued.
func refreshDue(tr *authv1.TokenRequest, now time.Time) bool {
	exp := tr.Status.ExpirationTimestamp.Time
	if tr.Spec.ExpirationSeconds == nil {
		return !now.Before(exp)
	}
	ttl := time.Duration(*tr.Spec.ExpirationSeconds) * time.Second
	issued := exp.Add(-ttl)
	return now.After(issued.Add(tokenMaxAge)) || now.After(issued.Add(ttl*tokenRefreshPercent/100))
}
