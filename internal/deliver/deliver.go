// Package deliver is Herald's delivery API: the agent's scheduled jobs and
// its send-message tool, on whatever host they run, post their messages to
// POST /v1/deliver with Herald's delivery token, and Herald sends them
// through the platform connections (and the one Matrix device) it holds.
// It holds the server's handler and the client that herald deliver uses.
package deliver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/herald-chat/herald/internal/bearer"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/ops"
	"github.com/herald-chat/herald/internal/store"
)

// Path is where the API is served; a delivery's state is at Path/{id}.
const Path = "/v1/deliver"

// Bounds on a request (our choices): a report longer than MaxText is split
// into many messages already (64 KiB is 16 of Telegram's); keys and targets
// are short names.
const (
	MaxText   = 64 << 10
	MaxKey    = 255
	MaxTarget = 1024
	// maxBody leaves room for JSON escapes of the text.
	maxBody = 6*MaxText + 4<<10
)

// Request is a message to deliver.
type Request struct {
	// Target names the chats: home, all, <platform>, <platform>:<chat>[:<thread>],
	// origin:<session id>, or several of these separated by commas.
	Target string `json:"target"`
	// Text is markdown, rendered for each platform and split at its length.
	Text string `json:"text"`
	// IdempotencyKey makes a repeated request deliver nothing more; one is
	// made up when it is empty.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// Status is a delivery as it stands.
type Status struct {
	ID             string `json:"id"`
	IdempotencyKey string `json:"idempotency_key"`
	Target         string `json:"target"`
	// State is queued while a send is not settled, then sent when every
	// send is, failed when one failed, uncertain when a restart came
	// during one's call.
	State     string    `json:"state"`
	Sends     []Send    `json:"sends"`
	CreatedAt time.Time `json:"created_at"`
}

// Send is a delivery's message to one chat.
type Send struct {
	Platform string `json:"platform"`
	Chat     string `json:"chat"`
	Thread   string `json:"thread,omitempty"`
	// State is queued, sending, sent, failed or uncertain.
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Messages is how many messages show it (a long text is split).
	Messages int `json:"messages"`
}

// Error is the body of every answer that is not a delivery.
type Error struct {
	Error struct {
		Message string `json:"message"`
		// Code is one of unauthorized, bad_request, too_large,
		// unknown_target, key_reused, not_found, unavailable.
		Code string `json:"code"`
	} `json:"error"`
}

// Deliverer journals deliveries and reports on them: the gateway's runner.
type Deliverer interface {
	Deliver(ctx context.Context, key, target, text string) (store.Delivery, bool, error)
	DeliveryState(ctx context.Context, id int64) (store.Delivery, error)
}

// Handler serves the API for requests that carry token as their bearer
// credential; token must not be empty.
func Handler(token string, d Deliverer, metrics *ops.Metrics) http.Handler {
	s := &server{token: bearer.New(token), d: d, metrics: metrics}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, s.post)
	mux.HandleFunc("GET "+Path+"/{id}", s.get)
	return s.authorized(mux)
}

type server struct {
	token   bearer.Token
	d       Deliverer
	metrics *ops.Metrics
}

// authorized refuses a request without the token, before anything else.
func (s *server) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !s.token.Matches(got) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="herald delivery"`)
			s.fail(w, http.StatusUnauthorized, "unauthorized", "a bearer token equal to HERALD_DELIVERY_TOKEN is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) post(w http.ResponseWriter, r *http.Request) {
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.fail(w, http.StatusRequestEntityTooLarge, "too_large", "the request is over "+strconv.Itoa(maxBody)+" bytes")
			return
		}
		s.fail(w, http.StatusBadRequest, "bad_request", "the body is not a JSON object with target, text and idempotency_key: "+err.Error())
		return
	}
	if msg := check(&req); msg != "" {
		code, status := "bad_request", http.StatusBadRequest
		if len(req.Text) > MaxText {
			code, status = "too_large", http.StatusRequestEntityTooLarge
		}
		s.fail(w, status, code, msg)
		return
	}
	d, created, err := s.d.Deliver(r.Context(), req.IdempotencyKey, req.Target, req.Text)
	switch {
	case errors.Is(err, gateway.ErrUnknownTarget):
		s.fail(w, http.StatusNotFound, "unknown_target", err.Error())
		return
	case errors.Is(err, gateway.ErrKeyReused):
		s.fail(w, http.StatusConflict, "key_reused", "idempotency_key "+strconv.Quote(req.IdempotencyKey)+" was used for another text or target")
		return
	case err != nil:
		s.fail(w, http.StatusServiceUnavailable, "unavailable", "the delivery could not be journalled; try again")
		return
	}
	status := http.StatusAccepted
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	write(w, status, statusOf(d))
}

// check fills in a missing key and says what is wrong with the request,
// or "".
func check(req *Request) string {
	req.Target = strings.TrimSpace(req.Target)
	switch {
	case req.Target == "":
		return "target is empty: name home, all, <platform>, <platform>:<chat>[:<thread>] or origin:<session id>"
	case len(req.Target) > MaxTarget:
		return "target is over " + strconv.Itoa(MaxTarget) + " bytes"
	case strings.TrimSpace(req.Text) == "":
		return "text is empty"
	case len(req.Text) > MaxText:
		return "text is over " + strconv.Itoa(MaxText) + " bytes"
	case len(req.IdempotencyKey) > MaxKey:
		return "idempotency_key is over " + strconv.Itoa(MaxKey) + " bytes"
	case req.IdempotencyKey == "":
		var b [16]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
		req.IdempotencyKey = "herald-" + hex.EncodeToString(b[:])
	}
	return ""
}

func (s *server) get(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, http.StatusNotFound, "not_found", "no delivery "+strconv.Quote(r.PathValue("id")))
		return
	}
	d, err := s.d.DeliveryState(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.fail(w, http.StatusNotFound, "not_found", "no delivery "+strconv.Quote(r.PathValue("id"))+" (settled ones are kept 30 days)")
	case err != nil:
		s.fail(w, http.StatusServiceUnavailable, "unavailable", "the delivery could not be read; try again")
	default:
		write(w, http.StatusOK, statusOf(d))
	}
}

// statusOf is a journalled delivery as the API shows it.
func statusOf(d store.Delivery) Status {
	st := Status{ID: strconv.FormatInt(d.ID, 10), IdempotencyKey: d.Key, Target: d.Target, CreatedAt: d.CreatedAt}
	seen := map[store.SendStatus]bool{}
	for _, s := range d.Sends {
		st.Sends = append(st.Sends, Send{Platform: s.Platform, Chat: s.Target.ChatID, Thread: s.Target.ThreadID,
			State: string(s.Status), Error: s.Error, Messages: len(s.MessageIDs)})
		seen[s.Status] = true
	}
	switch {
	case seen[store.Queued] || seen[store.Sending]:
		st.State = string(store.Queued)
	case seen[store.NotSent]:
		st.State = string(store.NotSent)
	case seen[store.Uncertain]:
		st.State = string(store.Uncertain)
	default:
		st.State = string(store.Sent)
	}
	return st
}

// fail answers with an Error, and counts the refusal.
func (s *server) fail(w http.ResponseWriter, status int, code, msg string) {
	s.metrics.Deliveries.WithLabelValues("refused").Inc()
	var e Error
	e.Error.Message, e.Error.Code = msg, code
	write(w, status, e)
}

func write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
