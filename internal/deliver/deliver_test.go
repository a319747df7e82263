package deliver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/ops"
	"github.com/herald-chat/herald/internal/store"
)

const token = "s3cret-delivery-token"

// journal is a Deliverer that keeps deliveries in memory, one per key, to
// the chats it knows by name.
type journal struct {
	mu    sync.Mutex
	known map[string]bool
	byKey map[string]store.Delivery
	byID  map[int64]store.Delivery
}

func newJournal() *journal {
	return &journal{known: map[string]bool{"telegram:-100": true}, byKey: map[string]store.Delivery{}, byID: map[int64]store.Delivery{}}
}

func (j *journal) Deliver(_ context.Context, key, target, text string) (store.Delivery, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if d, ok := j.byKey[key]; ok {
		if d.Target != target || d.Text != text {
			return d, false, gateway.ErrKeyReused
		}
		return d, false, nil
	}
	if !j.known[target] {
		return store.Delivery{}, false, fmt.Errorf("%w %q: no message came from that chat", gateway.ErrUnknownTarget, target)
	}
	platform, chatID, _ := strings.Cut(target, ":")
	d := store.Delivery{ID: int64(len(j.byID) + 1), Key: key, Target: target, Text: text, CreatedAt: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC),
		Sends: []store.Send{{Platform: platform, Target: chat.Target{ChatID: chatID}, Status: store.Queued}}}
	j.byKey[key], j.byID[d.ID] = d, d
	return d, true, nil
}

func (j *journal) DeliveryState(_ context.Context, id int64) (store.Delivery, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	d, ok := j.byID[id]
	if !ok {
		return d, store.ErrNotFound
	}
	return d, nil
}

// settle marks a delivery's sends as status.
func (j *journal) settle(id int64, status store.SendStatus, ids ...string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	d := j.byID[id]
	for i := range d.Sends {
		d.Sends[i].Status, d.Sends[i].MessageIDs = status, ids
	}
	j.byID[id], j.byKey[d.Key] = d, d
}

func serve(t *testing.T) (*httptest.Server, *journal, *ops.Metrics) {
	j, m := newJournal(), ops.NewMetrics()
	srv := httptest.NewServer(Handler(token, j, m))
	t.Cleanup(srv.Close)
	return srv, j, m
}

// call makes a request with a raw body and the given bearer credential,
// and returns the status and the decoded answer.
func call(t *testing.T, srv *httptest.Server, method, path, credential, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if credential != "" {
		req.Header.Set("Authorization", credential)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("%s %s: the answer is not JSON: %v", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, got, resp.Header
}

// code is the error code of an Error answer.
func code(answer map[string]any) string {
	e, _ := answer["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestAuthorization(t *testing.T) {
	srv, j, m := serve(t)
	body := `{"target":"telegram:-100","text":"hi","idempotency_key":"k"}`
	for _, credential := range []string{"", "Bearer", "Bearer wrong", "Basic " + token, "bearer " + token, "Bearer " + token + "x"} {
		status, answer, header := call(t, srv, http.MethodPost, Path, credential, body)
		if status != http.StatusUnauthorized || code(answer) != "unauthorized" || !strings.HasPrefix(header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("credential %q: %d %v, want 401 unauthorized with a Bearer challenge", credential, status, answer)
		}
		if status, _, _ := call(t, srv, http.MethodGet, Path+"/1", credential, ""); status != http.StatusUnauthorized {
			t.Errorf("GET with credential %q: %d, want 401", credential, status)
		}
	}
	if len(j.byID) != 0 {
		t.Errorf("an unauthorized request journalled %v", j.byID)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if want := `herald_deliveries_total{outcome="refused"} 12`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics does not show %s", want)
	}
	if status, _, _ := call(t, srv, http.MethodPost, Path, "Bearer "+token, body); status != http.StatusAccepted {
		t.Errorf("with the token: %d, want 202", status)
	}
}

func TestDeliverAndState(t *testing.T) {
	srv, j, _ := serve(t)
	auth := "Bearer " + token
	status, answer, _ := call(t, srv, http.MethodPost, Path, auth, `{"target":" telegram:-100 ","text":"**report**","idempotency_key":"job-1"}`)
	if status != http.StatusAccepted || answer["id"] != "1" || answer["state"] != "queued" || answer["idempotency_key"] != "job-1" || answer["target"] != "telegram:-100" {
		t.Fatalf("POST: %d %v, want 202 with the queued delivery", status, answer)
	}
	if d := j.byID[1]; d.Text != "**report**" || d.Key != "job-1" {
		t.Errorf("journalled %+v", d)
	}
	// The same key again: the same delivery, nothing new.
	status, answer, header := call(t, srv, http.MethodPost, Path, auth, `{"target":"telegram:-100","text":"**report**","idempotency_key":"job-1"}`)
	if status != http.StatusOK || answer["id"] != "1" || header.Get("Idempotent-Replayed") != "true" || len(j.byID) != 1 {
		t.Errorf("the same key again: %d %v %v, want 200 replaying delivery 1", status, answer, header)
	}
	status, answer, _ = call(t, srv, http.MethodPost, Path, auth, `{"target":"telegram:-100","text":"other","idempotency_key":"job-1"}`)
	if status != http.StatusConflict || code(answer) != "key_reused" {
		t.Errorf("the key with another text: %d %v, want 409 key_reused", status, answer)
	}
	// Without a key each request is a delivery of its own.
	call(t, srv, http.MethodPost, Path, auth, `{"target":"telegram:-100","text":"a"}`)
	call(t, srv, http.MethodPost, Path, auth, `{"target":"telegram:-100","text":"a"}`)
	if len(j.byID) != 3 || j.byID[2].Key == j.byID[3].Key || !strings.HasPrefix(j.byID[2].Key, "herald-") {
		t.Errorf("requests without a key: %+v, want two deliveries with keys of their own", j.byID)
	}

	j.settle(1, store.Sent, "m1", "m2")
	status, answer, _ = call(t, srv, http.MethodGet, Path+"/1", auth, "")
	sends, _ := answer["sends"].([]any)
	if status != http.StatusOK || answer["state"] != "sent" || len(sends) != 1 {
		t.Fatalf("GET: %d %v, want 200 and sent", status, answer)
	}
	if s := sends[0].(map[string]any); s["platform"] != "telegram" || s["chat"] != "-100" || s["state"] != "sent" || s["messages"] != 2.0 {
		t.Errorf("the send: %v", s)
	}
	for _, id := range []string{"9", "x", "-1"} {
		if status, answer, _ := call(t, srv, http.MethodGet, Path+"/"+id, auth, ""); status != http.StatusNotFound || code(answer) != "not_found" {
			t.Errorf("GET %s: %d %v, want 404", id, status, answer)
		}
	}
}

func TestBadRequests(t *testing.T) {
	srv, j, _ := serve(t)
	auth := "Bearer " + token
	long := strings.Repeat("x", MaxText+1)
	for _, c := range []struct {
		body   string
		status int
		code   string
		says   string
	}{
		{`{"target":"nosuch","text":"hi"}`, 404, "unknown_target", `"nosuch": no message came from that chat`},
		{`{"text":"hi"}`, 400, "bad_request", "target is empty"},
		{`{"target":"telegram:-100","text":"  "}`, 400, "bad_request", "text is empty"},
		{`{"target":"telegram:-100","text":"hi","extra":1}`, 400, "bad_request", `unknown field "extra"`},
		{`{"target":"telegram:-100","text":"hi"`, 400, "bad_request", "not a JSON object"},
		{`["telegram:-100"]`, 400, "bad_request", "not a JSON object"},
		{`{"target":"telegram:-100","text":"hi","idempotency_key":"` + strings.Repeat("k", MaxKey+1) + `"}`, 400, "bad_request", "idempotency_key is over"},
		{`{"target":"` + strings.Repeat("t", MaxTarget+1) + `","text":"hi"}`, 400, "bad_request", "target is over"},
		{`{"target":"telegram:-100","text":"` + long + `"}`, 413, "too_large", "text is over 65536 bytes"},
		{`{"target":"telegram:-100","text":"` + strings.Repeat(`\u0000`, maxBody/6+1) + `"}`, 413, "too_large", "the request is over"},
	} {
		status, answer, _ := call(t, srv, http.MethodPost, Path, auth, c.body)
		e, _ := answer["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if status != c.status || code(answer) != c.code || !strings.Contains(msg, c.says) {
			t.Errorf("%.80s: %d %v, want %d %s saying %q", c.body, status, answer, c.status, c.code, c.says)
		}
	}
	if len(j.byID) != 0 {
		t.Errorf("bad requests journalled %v", j.byID)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+Path+"/1", nil)
	req.Header.Set("Authorization", auth)
	if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %v, %v; want 405", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestClient(t *testing.T) {
	srv, j, _ := serve(t)
	c := &Client{URL: srv.URL + "/", Token: token}
	ctx := context.Background()
	st, err := c.Deliver(ctx, Request{Target: "telegram:-100", Text: "hello", IdempotencyKey: "k"})
	if err != nil || st.ID != "1" || st.State != "queued" || len(st.Sends) != 1 || st.Sends[0].Chat != "-100" {
		t.Fatalf("Deliver = %+v, %v", st, err)
	}
	j.settle(1, store.NotSent)
	if st, err := c.State(ctx, "1"); err != nil || st.State != "failed" {
		t.Errorf("State = %+v, %v; want failed", st, err)
	}
	if _, err := c.Deliver(ctx, Request{Target: "nosuch", Text: "x"}); err == nil || !strings.Contains(err.Error(), `unknown target "nosuch"`) || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("an unknown target: %v, want Herald's reason and the status", err)
	}
	bad := &Client{URL: srv.URL, Token: "wrong"}
	if _, err := bad.Deliver(ctx, Request{Target: "telegram:-100", Text: "x"}); err == nil || !strings.Contains(err.Error(), "HERALD_DELIVERY_TOKEN") {
		t.Errorf("a wrong token: %v, want the reason naming HERALD_DELIVERY_TOKEN", err)
	}
	if strings.Contains(fmt.Sprint(err), token) {
		t.Errorf("an error shows the token: %v", err)
	}
	nowhere := &Client{URL: "http://127.0.0.1:1", Token: token}
	if _, err := nowhere.Deliver(ctx, Request{Target: "x", Text: "x"}); err == nil || !strings.Contains(err.Error(), "reaching Herald") {
		t.Errorf("no Herald there: %v", err)
	}
}

func TestStateOf(t *testing.T) {
	for _, c := range []struct {
		sends []store.SendStatus
		want  string
	}{
		{[]store.SendStatus{store.Sent, store.Sent}, "sent"},
		{[]store.SendStatus{store.Sent, store.Sending}, "queued"},
		{[]store.SendStatus{store.NotSent, store.Queued}, "queued"},
		{[]store.SendStatus{store.Uncertain, store.Sent}, "uncertain"},
		{[]store.SendStatus{store.Uncertain, store.NotSent}, "failed"},
	} {
		d := store.Delivery{ID: 1}
		for _, s := range c.sends {
			d.Sends = append(d.Sends, store.Send{Status: s})
		}
		if got := statusOf(d).State; got != c.want {
			t.Errorf("sends %v: state %s, want %s", c.sends, got, c.want)
		}
	}
}

// FuzzPost: whatever the body, the API answers with one of its statuses
// and JSON, journals only what it accepted, and never echoes the token.
func FuzzPost(f *testing.F) {
	f.Add(`{"target":"telegram:-100","text":"hi","idempotency_key":"k"}`)
	f.Add(`{"target":"telegram:-100","text":"\ud800"}`)
	f.Add(`{"target":"","text":""}`)
	f.Add(`null`)
	f.Add(`{"target":1}`)
	j, m := newJournal(), ops.NewMetrics()
	h := Handler(token, j, m)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 202, 400, 404, 409, 413:
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("the answer is not JSON: %q", rec.Body.String())
		}
		if bytes.Contains(rec.Body.Bytes(), []byte(token)) {
			t.Fatalf("the answer holds the token")
		}
		var st Status
		if rec.Code == 202 && (json.Unmarshal(rec.Body.Bytes(), &st) != nil || st.ID == "" || st.State != "queued") {
			t.Fatalf("an accepted delivery's answer: %q", rec.Body.String())
		}
	})
}
