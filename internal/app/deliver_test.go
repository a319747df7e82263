package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/deliver"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/store/postgres"
	"github.com/herald-chat/herald/internal/store/postgres/pgtest"
)

// Without HERALD_DELIVERY_TOKEN nothing is served at /v1/deliver.
func TestDeliveryAPIIsOffWithoutAToken(t *testing.T) {
	addr := serveApp(t, map[string]string{})
	resp, err := http.Post("http://"+addr+deliver.Path, "application/json", strings.NewReader(`{"target":"home","text":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST %s without a token set: %s, want 404", deliver.Path, resp.Status)
	}
}

// With the token, a message delivered to a web chat conversation shows in
// its history; a wrong token is refused.
func TestDeliveryToTheWebChat(t *testing.T) {
	const token = "delivery-token-for-the-test"
	addr := serveApp(t, map[string]string{"HERALD_DELIVERY_TOKEN": token})
	base := "http://" + addr
	const conv = "conv-0123456789"
	resp, err := http.Post(base+"/api/messages", "application/json", strings.NewReader(`{"conversation":"`+conv+`","text":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("posting in the web chat: %s", resp.Status)
	}

	wrong := &deliver.Client{URL: base, Token: "not-the-token"}
	if _, err := wrong.Deliver(t.Context(), deliver.Request{Target: "webchat:" + conv, Text: "x"}); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("a wrong token: %v, want 401", err)
	}
	c := &deliver.Client{URL: base, Token: token}
	if _, err := c.Deliver(t.Context(), deliver.Request{Target: "webchat:conv-nobody-wrote", Text: "x"}); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("a conversation nobody wrote in: %v, want 404", err)
	}
	st, err := c.Deliver(t.Context(), deliver.Request{Target: "webchat:" + conv, Text: "The **daily** report", IdempotencyKey: "daily-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for st.State == "queued" {
		time.Sleep(2 * time.Millisecond) // polling, as herald deliver --wait does
		if st, err = c.State(ctx, st.ID); err != nil {
			t.Fatal(err)
		}
	}
	if st.State != "sent" {
		t.Fatalf("the delivery is %+v, want sent", st)
	}
	var history struct {
		Messages []struct{ Role, Text, HTML string }
	}
	resp, err = http.Get(base + "/api/history?conversation=" + conv)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&history); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range history.Messages {
		found = found || m.Text == "The **daily** report" && strings.Contains(m.HTML, "<strong>daily</strong>")
	}
	if !found {
		t.Errorf("the conversation's history %+v does not show the delivered report", history.Messages)
	}
}

// With HERALD_DATABASE_URL the gateway keeps its state in PostgreSQL: a
// web chat message is journalled, answered and kept there, and a delivery
// to its conversation goes through the outbox there.
func TestStateInPostgreSQL(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	const token = "delivery-token-for-the-test"
	addr := serveApp(t, map[string]string{"HERALD_DATABASE_URL": dbURL, "HERALD_DELIVERY_TOKEN": token})
	db, err := postgres.Open(t.Context(), dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const conv = "conv-postgres-01"
	resp, err := http.Post("http://"+addr+"/api/messages", "application/json", strings.NewReader(`{"conversation":"`+conv+`","text":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// The turn is journalled, answered and kept in the database.
	history := func() []store.Entry {
		t.Helper()
		c, err := db.FindChat(t.Context(), "webchat", conv, "")
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			t.Fatal(err)
		}
		id, ok, err := db.SessionID(t.Context(), c.SessionKey)
		if err != nil || !ok {
			return nil
		}
		h, err := db.History(t.Context(), id, 0)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	deadline := time.Now().Add(30 * time.Second) // a hang guard, not a speed assertion
	for len(history()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the turn is not in PostgreSQL: %+v", history())
		}
		time.Sleep(5 * time.Millisecond)
	}

	c := &deliver.Client{URL: "http://" + addr, Token: token}
	st, err := c.Deliver(t.Context(), deliver.Request{Target: "webchat:" + conv, Text: "kept in PostgreSQL", IdempotencyKey: "pg-1"})
	if err != nil {
		t.Fatal(err)
	}
	for st.State == "queued" {
		time.Sleep(2 * time.Millisecond) // polling, as herald deliver --wait does
		if st, err = c.State(t.Context(), st.ID); err != nil {
			t.Fatal(err)
		}
	}
	if st.State != "sent" {
		t.Fatalf("the delivery is %+v, want sent", st)
	}
	if h := history(); len(h) != 3 || h[0].Content != "hello" || h[2].Role != chat.Notice || h[2].Content != "kept in PostgreSQL" {
		t.Errorf("the transcript in PostgreSQL is %+v, want the exchange, then the delivery as a notice", h)
	}
}
