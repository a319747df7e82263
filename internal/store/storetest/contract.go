package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/store"
)

func init() {
	contract = []struct {
		name string
		test func(t *testing.T, open Opener)
	}{
		{"ReceiveDedupe", testReceiveDedupe},
		{"ReceiveEmptyEventID", testReceiveEmptyEventID},
		{"InboundRoundTrip", testInboundRoundTrip},
		{"TurnFlow", testTurnFlow},
		{"MarkShown", testMarkShown},
		{"TurnFinal", testTurnFinal},
		{"TurnProgress", testTurnProgress},
		{"SurvivesReopen", testSurvivesReopen},
		{"History", testHistory},
		{"SetSessionIDRotation", testSetSessionIDRotation},
		{"SwapSessionID", testSwapSessionID},
		{"Pairing", testPairing},
		{"PairingJustBeforeExpiry", testPairingJustBeforeExpiry},
		{"PairingAcrossClockJumps", testPairingAcrossClockJumps},
		{"State", testState},
		{"ConcurrentReceive", testConcurrentReceive},
		{"Prune", testPrune},
		{"ReceiveRecordsChats", testReceiveRecordsChats},
		{"Outbox", testOutbox},
		{"PruneDeliveries", testPruneDeliveries},
		{"AdminPairings", testAdminPairings},
		{"AdminConversations", testAdminConversations},
		{"AdminTurns", testAdminTurns},
	}
}

// newStore opens a new store with a clock of its own.
func newStore(t *testing.T, open Opener) (store.Store, *Clock, func() store.Store) {
	t.Helper()
	c := NewClock()
	s, reopen := open(t, c.Now)
	return s, c, reopen
}

// receive journals in under key and fails the test if that fails.
func receive(t *testing.T, s store.Store, key string, in chat.Inbound) store.Turn {
	t.Helper()
	turn, err := s.Receive(context.Background(), key, in)
	if err != nil {
		t.Fatal(err)
	}
	return turn
}

// pendingTurns are the store's pending turns; an error fails the test.
func pendingTurns(t *testing.T, s store.Store) []store.Turn {
	t.Helper()
	turns, err := s.PendingTurns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return turns
}

func inbound(platform, eventID, text string) chat.Inbound {
	return chat.Inbound{
		Source:   chat.Source{Platform: platform, ChatID: "c1", ChatType: chat.DM, UserID: "u1"},
		Text:     text,
		EventID:  eventID,
		Received: time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC),
	}
}

// delivery is a delivery to two chats.
func delivery(key string) store.Delivery {
	return store.Delivery{Key: key, Target: "all", Text: "the report", Sends: []store.Send{
		{Platform: "telegram", Target: chat.Target{ChatID: "-100", ThreadID: "7"}},
		{Platform: "matrix", Target: chat.Target{ChatID: "!home:hs"}},
	}}
}

// checkAllSet fails when a field of v (recursively, through structs and
// the first element of slices) is zero, so the round-trip test grows with
// chat.Inbound.
func checkAllSet(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			break
		}
		for i := range v.NumField() {
			checkAllSet(t, path+"."+v.Type().Field(i).Name, v.Field(i))
		}
		return
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("%s is empty in the fixture", path)
			return
		}
		if v.Type().Elem().Kind() == reflect.Struct {
			checkAllSet(t, path+"[0]", v.Index(0))
		}
		return
	}
	if v.IsZero() {
		t.Errorf("%s is zero in the fixture: fill it so the round trip covers it", path)
	}
}

func testReceiveDedupe(t *testing.T, open Opener) {
	s, _, _ := newStore(t, open)
	ctx := context.Background()
	first := receive(t, s, "k", inbound("telegram", "e1", "hello"))
	if first.ID == 0 || first.Status != store.Received || first.SessionKey != "k" {
		t.Errorf("turn %+v", first)
	}
	_, err := s.Receive(ctx, "k", inbound("telegram", "e1", "hello again"))
	if !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("second receive: %v, want ErrDuplicate", err)
	}
	if n := len(pendingTurns(t, s)); n != 1 {
		t.Errorf("%d turns after a duplicate, want 1", n)
	}
	// The same event id on another platform is another event.
	if _, err := s.Receive(ctx, "k2", inbound("matrix", "e1", "hi")); err != nil {
		t.Errorf("same id, other platform: %v", err)
	}
	if n := len(pendingTurns(t, s)); n != 2 {
		t.Errorf("%d turns, want 2", n)
	}
}

func testReceiveEmptyEventID(t *testing.T, open Opener) {
	s, _, _ := newStore(t, open)
	ctx := context.Background()
	for i := range 3 {
		if _, err := s.Receive(ctx, "k", inbound("telegram", "", fmt.Sprint(i))); err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
	}
	if n := len(pendingTurns(t, s)); n != 3 {
		t.Errorf("%d turns, want 3", n)
	}
}

func testInboundRoundTrip(t *testing.T, open Opener) {
	s, _, reopen := newStore(t, open)
	ctx := context.Background()
	zone := time.FixedZone("X", 5*3600+30*60)
	in := chat.Inbound{
		Source: chat.Source{
			Platform: "matrix", ChatID: "!room:s", ChatName: "Room", ChatType: chat.Thread,
			UserID: "@a:s", UserName: "Ann", ThreadID: "$t", MessageID: "$m",
		},
		Text: "héllo \x00 <b>&\"'\n",
		Attachments: []chat.Attachment{
			{Kind: "image", MIMEType: "image/png", Name: "a.png", Data: []byte{0, 1, 2, 0xff, 0xfe}},
			{Kind: "image", MIMEType: "image/jpeg", Name: "b.jpg", Data: []byte("jpeg")},
		},
		Mentioned: true,
		EventID:   "$event",
		Received:  time.Date(2026, 3, 1, 17, 29, 59, 123456789, zone),
		To:        &chat.Target{ChatID: "!room:s", ThreadID: "$root", ReplyTo: "$m", Asker: "@a:s", DM: true},
	}
	checkAllSet(t, "Inbound", reflect.ValueOf(in))
	want := in
	want.Received = in.Received.UTC()

	turn := receive(t, s, "key", in)
	if !reflect.DeepEqual(turn.Inbound, want) {
		t.Errorf("Receive returned\n%+v\nwant\n%+v", turn.Inbound, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	pending, err := s.PendingTurns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 {
		t.Fatalf("%d pending turns, want 1", len(pending))
	}
	got := pending[0].Inbound
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stored inbound\n%+v\nwant\n%+v", got, want)
	}
	if got.Received.Location() != time.UTC {
		t.Errorf("Received in %v, want UTC", got.Received.Location())
	}
}

func testTurnFlow(t *testing.T, open Opener) {
	s, c, _ := newStore(t, open)
	ctx := context.Background()
	var ids []int64
	for i := range 4 {
		turn := receive(t, s, "k", inbound("telegram", fmt.Sprint("e", i), fmt.Sprint("m", i)))
		ids = append(ids, turn.ID)
		c.Add(time.Second)
	}
	// 0 running, 1 delivered, 2 failed, 3 left received.
	if err := s.SetTurnStatus(ctx, ids[0], store.Running, "ignored"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTurnStatus(ctx, ids[1], store.Delivered, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTurnStatus(ctx, ids[2], store.Running, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTurnStatus(ctx, ids[2], store.Failed, "agent down"); err != nil {
		t.Fatal(err)
	}
	pending, err := s.PendingTurns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 || pending[0].ID != ids[0] || pending[1].ID != ids[3] {
		t.Fatalf("pending %+v, want turns %d and %d", pending, ids[0], ids[3])
	}
	p0, p3 := pending[0], pending[1]
	if p0.Status != store.Running || p0.Error != "" || p0.Inbound.Text != "m0" {
		t.Errorf("turn 0: %+v", p0)
	}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if !p0.CreatedAt.Equal(start) || !p0.UpdatedAt.Equal(start.Add(4*time.Second)) {
		t.Errorf("turn 0 created %v updated %v", p0.CreatedAt, p0.UpdatedAt)
	}
	if p0.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt in %v, want UTC", p0.CreatedAt.Location())
	}
	if p3.Status != store.Received || p3.Inbound.Text != "m3" {
		t.Errorf("turn 3: %+v", p3)
	}

	if err := s.SetTurnStatus(ctx, 9999, store.Running, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown turn: %v, want ErrNotFound", err)
	}
	if err := s.SetTurnStatus(ctx, ids[3], "bogus", ""); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("bogus status: %v", err)
	}
}

func testMarkShown(t *testing.T, open Opener) {
	s, _, _ := newStore(t, open)
	ctx := context.Background()
	turn := receive(t, s, "k", inbound("telegram", "e", "x"))
	if turn.Shown {
		t.Error("new turn is shown")
	}
	if err := s.SetTurnStatus(ctx, turn.ID, store.Running, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkShown(ctx, turn.ID); err != nil {
		t.Fatal(err)
	}
	pending, err := s.PendingTurns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || !pending[0].Shown || pending[0].Status != store.Running {
		t.Errorf("pending %+v, want one running shown turn", pending)
	}
	if err := s.MarkShown(ctx, turn.ID+1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown turn: %v, want ErrNotFound", err)
	}
}

func testTurnFinal(t *testing.T, open Opener) {
	s, _, _ := newStore(t, open)
	ctx := context.Background()
	turn := receive(t, s, "k", inbound("telegram", "e", "x"))
	pending, err := s.PendingTurns(ctx)
	if err != nil || len(pending) != 1 || pending[0].Final != nil {
		t.Fatalf("pending %+v (%v), want one turn without a final", pending, err)
	}
	want := store.Final{Text: "the whole answer", MessageIDs: []string{"41", "42"}}
	if err := s.SetTurnFinal(ctx, turn.ID, want); err != nil {
		t.Fatal(err)
	}
	pending, err = s.PendingTurns(ctx)
	if err != nil || len(pending) != 1 || pending[0].Final == nil || !reflect.DeepEqual(*pending[0].Final, want) {
		t.Errorf("pending %+v (%v), want the final %+v", pending, err, want)
	}
	if err := s.SetTurnFinal(ctx, turn.ID+1, want); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown turn: %v, want ErrNotFound", err)
	}
}

func testTurnProgress(t *testing.T, open Opener) {
	s, _, _ := newStore(t, open)
	ctx := context.Background()
	turn := receive(t, s, "k", inbound("telegram", "e", "x"))
	for _, want := range []store.Progress{{RunID: "run_1"}, {RunID: "run_1", MessageIDs: []string{"41", "42"}}} {
		if err := s.SetTurnProgress(ctx, turn.ID, want); err != nil {
			t.Fatal(err)
		}
		pending, err := s.PendingTurns(ctx)
		if err != nil || len(pending) != 1 || !reflect.DeepEqual(pending[0].Progress, want) {
			t.Errorf("pending %+v (%v), want the progress %+v", pending, err, want)
		}
	}
	if err := s.SetTurnProgress(ctx, turn.ID+1, store.Progress{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown turn: %v, want ErrNotFound", err)
	}
}

func testSurvivesReopen(t *testing.T, open Opener) {
	s, _, reopen := newStore(t, open)
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	turn, err := s.Receive(ctx, "k", inbound("telegram", "e1", "hi"))
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(err)
	check(s.SetTurnStatus(ctx, turn.ID, store.Running, ""))
	check(s.MarkShown(ctx, turn.ID))
	check(s.SetSessionID(ctx, "k", "sess-1"))
	check(s.Append(ctx, "sess-1",
		store.Entry{Role: chat.User, Content: "hi", MessageID: "m1", At: at},
		store.Entry{Role: chat.Assistant, Content: "hello", At: at.Add(time.Second)}))
	check(s.SetState(ctx, "telegram.offset", "42"))
	check(s.Close())

	s = reopen()
	if id, ok, err := s.SessionID(ctx, "k"); err != nil || !ok || id != "sess-1" {
		t.Errorf("session after reopen: %q %v %v", id, ok, err)
	}
	h, err := s.History(ctx, "sess-1", 0)
	check(err)
	want := []store.Entry{
		{Role: chat.User, Content: "hi", MessageID: "m1", At: at},
		{Role: chat.Assistant, Content: "hello", At: at.Add(time.Second)},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("history after reopen\n%+v\nwant\n%+v", h, want)
	}
	pending, err := s.PendingTurns(ctx)
	check(err)
	if len(pending) != 1 || pending[0].ID != turn.ID || pending[0].Status != store.Running || !pending[0].Shown {
		t.Errorf("pending after reopen: %+v", pending)
	}
	if v, ok, err := s.State(ctx, "telegram.offset"); err != nil || !ok || v != "42" {
		t.Errorf("state after reopen: %q %v %v", v, ok, err)
	}
	if _, err := s.Receive(ctx, "k", inbound("telegram", "e1", "hi")); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("redelivery after reopen: %v, want ErrDuplicate", err)
	}
}

func testHistory(t *testing.T, open Opener) {
	s, c, _ := newStore(t, open)
	ctx := context.Background()
	if h, err := s.History(ctx, "none", 10); err != nil || len(h) != 0 {
		t.Errorf("empty history: %v %v", h, err)
	}
	for i := range 5 {
		if err := s.Append(ctx, "a", store.Entry{Role: chat.User, Content: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Minute)
	}
	if err := s.Append(ctx, "b", store.Entry{Role: chat.User, Content: "other"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, "a"); err != nil {
		t.Errorf("appending nothing: %v", err)
	}
	contents := func(h []store.Entry) string {
		var b []string
		for _, e := range h {
			b = append(b, e.Content)
		}
		return strings.Join(b, ",")
	}
	for _, tc := range []struct {
		limit int
		want  string
	}{{0, "0,1,2,3,4"}, {-1, "0,1,2,3,4"}, {2, "3,4"}, {1, "4"}, {5, "0,1,2,3,4"}, {50, "0,1,2,3,4"}} {
		h, err := s.History(ctx, "a", tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := contents(h); got != tc.want {
			t.Errorf("limit %d: %s, want %s", tc.limit, got, tc.want)
		}
	}
	h, err := s.History(ctx, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	// A zero At is stamped with the time of the append.
	if want := time.Date(2026, 3, 1, 12, 4, 0, 0, time.UTC); !h[0].At.Equal(want) || h[0].At.Location() != time.UTC {
		t.Errorf("stamped At %v, want %v", h[0].At, want)
	}
}

func testSetSessionIDRotation(t *testing.T, open Opener) {
	s, _, _ := newStore(t, open)
	ctx := context.Background()
	if _, ok, err := s.SessionID(ctx, "k"); err != nil || ok {
		t.Fatalf("unknown key: ok=%v err=%v", ok, err)
	}
	if err := s.SetSessionID(ctx, "k", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, "s1", store.Entry{Role: chat.User, Content: "old"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSessionID(ctx, "k", "s2"); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := s.SessionID(ctx, "k"); err != nil || !ok || id != "s2" {
		t.Errorf("after rotation: %q %v %v, want s2", id, ok, err)
	}
	if h, err := s.History(ctx, "s2", 0); err != nil || len(h) != 0 {
		t.Errorf("new session history: %v %v", h, err)
	}
	if h, err := s.History(ctx, "s1", 0); err != nil || len(h) != 1 {
		t.Errorf("old session history lost: %v %v", h, err)
	}
}

// SwapSessionID moves a conversation on only from the session the caller
// read: starting one where there is none, or rotating from the current
// one; a session set meanwhile is never overwritten.
func testSwapSessionID(t *testing.T, open Opener) {
	s, _, _ := newStore(t, open)
	ctx := context.Background()
	current := func() string {
		t.Helper()
		id, _, err := s.SessionID(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	steps := []struct {
		old, new string
		swapped  bool
		after    string
	}{
		{"", "s1", true, "s1"},    // none yet: started
		{"", "s2", false, "s1"},   // one was started meanwhile: kept
		{"s1", "s3", true, "s3"},  // the rotation the agent reported
		{"s1", "s4", false, "s3"}, // from a session no longer current
		{"other", "s5", false, "s3"},
	}
	for _, st := range steps {
		swapped, err := s.SwapSessionID(ctx, "k", st.old, st.new)
		if err != nil {
			t.Fatal(err)
		}
		if swapped != st.swapped || current() != st.after {
			t.Errorf("swap %q → %q: swapped %v, session %q; want %v, %q", st.old, st.new, swapped, current(), st.swapped, st.after)
		}
	}
}

func testPairing(t *testing.T, open Opener) {
	s, c, _ := newStore(t, open)
	ctx := context.Background()
	p, err := s.CreatePairing(ctx, "telegram", "u1", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Code) != store.CodeLen || strings.Trim(p.Code, store.CodeAlphabet) != "" {
		t.Errorf("code %q is not %d characters of %s", p.Code, store.CodeLen, store.CodeAlphabet)
	}
	if p.Platform != "telegram" || p.UserID != "u1" || p.UserName != "Ann" || p.Approved || !p.CreatedAt.Equal(c.Now()) {
		t.Errorf("pairing %+v", p)
	}
	c.Add(30 * time.Minute)
	again, err := s.CreatePairing(ctx, "telegram", "u1", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	if again != p {
		t.Errorf("second create %+v, want the pending %+v", again, p)
	}
	other, err := s.CreatePairing(ctx, "matrix", "u1", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	if other.Code == p.Code {
		t.Error("a user on another platform got the same code")
	}

	if ok, err := s.IsPaired(ctx, "telegram", "u1"); err != nil || ok {
		t.Fatalf("paired before approval: %v %v", ok, err)
	}
	if _, err := s.ApprovePairing(ctx, "ZZZZ2222"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown code: %v, want ErrNotFound", err)
	}
	approved, err := s.ApprovePairing(ctx, "  "+strings.ToLower(p.Code)+"\n")
	if err != nil {
		t.Fatalf("approve lower-case code with spaces: %v", err)
	}
	want := p
	want.Approved = true
	if approved != want {
		t.Errorf("approved %+v, want %+v", approved, want)
	}
	if ok, err := s.IsPaired(ctx, "telegram", "u1"); err != nil || !ok {
		t.Errorf("not paired after approval: %v %v", ok, err)
	}
	if ok, err := s.IsPaired(ctx, "matrix", "u1"); err != nil || ok {
		t.Errorf("other platform paired: %v %v", ok, err)
	}
	if _, err := s.ApprovePairing(ctx, p.Code); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("approving twice: %v, want ErrNotFound", err)
	}

	// The matrix code was made 30 minutes in; an hour later it has expired.
	c.Add(store.PairingTTL)
	if _, err := s.ApprovePairing(ctx, other.Code); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired code: %v, want ErrNotFound", err)
	}
	fresh, err := s.CreatePairing(ctx, "matrix", "u1", "Ann B")
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Code == other.Code || fresh.UserName != "Ann B" || !fresh.CreatedAt.Equal(c.Now()) {
		t.Errorf("after expiry got %+v, want a new code", fresh)
	}
	if _, err := s.ApprovePairing(ctx, fresh.Code); err != nil {
		t.Errorf("approve fresh code: %v", err)
	}
	if ok, err := s.IsPaired(ctx, "matrix", "u1"); err != nil || !ok {
		t.Errorf("not paired after approving the fresh code: %v %v", ok, err)
	}
}

func testPairingJustBeforeExpiry(t *testing.T, open Opener) {
	s, c, _ := newStore(t, open)
	ctx := context.Background()
	p, err := s.CreatePairing(ctx, "telegram", "u1", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(store.PairingTTL - time.Millisecond)
	if _, err := s.ApprovePairing(ctx, p.Code); err != nil {
		t.Errorf("code a millisecond before expiry: %v", err)
	}
}

// The wall clock jumping: hours forward expire a code (its age is an
// hour and more by the clock the operator reads too); hours back do not
// keep it valid for hours more: a code from the future is taken as
// expired, and the user gets a new one. A step of seconds changes nothing.
func testPairingAcrossClockJumps(t *testing.T, open Opener) {
	s, c, _ := newStore(t, open)
	ctx := context.Background()
	p, err := s.CreatePairing(ctx, "telegram", "u1", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(-30 * time.Second)
	if again, err := s.CreatePairing(ctx, "telegram", "u1", "Ann"); err != nil || again.Code != p.Code {
		t.Errorf("after a step of 30 s back: %+v, %v; want the same code", again, err)
	}
	c.Add(-3 * time.Hour)
	if _, err := s.ApprovePairing(ctx, p.Code); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a code made 3 h in the future approved: %v", err)
	}
	fresh, err := s.CreatePairing(ctx, "telegram", "u1", "Ann")
	if err != nil || fresh.Code == p.Code {
		t.Fatalf("after the jump back: %+v, %v; want a new code", fresh, err)
	}
	c.Add(5 * time.Hour)
	if _, err := s.ApprovePairing(ctx, fresh.Code); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a code approved 5 h after it was made: %v", err)
	}
}

func testState(t *testing.T, open Opener) {
	s, _, _ := newStore(t, open)
	ctx := context.Background()
	if _, ok, err := s.State(ctx, "x"); err != nil || ok {
		t.Errorf("unset state: ok=%v err=%v", ok, err)
	}
	if err := s.SetState(ctx, "x", "1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetState(ctx, "x", "2"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetState(ctx, "empty", ""); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.State(ctx, "x"); err != nil || !ok || v != "2" {
		t.Errorf("state x: %q %v %v, want 2", v, ok, err)
	}
	if v, ok, err := s.State(ctx, "empty"); err != nil || !ok || v != "" {
		t.Errorf("empty state: %q %v %v", v, ok, err)
	}
}

func testConcurrentReceive(t *testing.T, open Opener) {
	s, _, _ := newStore(t, open)
	ctx := context.Background()
	const goroutines, each, distinct = 50, 20, 100
	var (
		mu   sync.Mutex
		wins = map[string]int{}
		dups int
		errs []error
		wg   sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				// Ten goroutines share each event id; a few also read.
				id := fmt.Sprint("ev-", (g*each+i)%distinct)
				_, err := s.Receive(ctx, "k", inbound("telegram", id, "x"))
				if i%5 == 0 {
					if _, rerr := s.PendingTurns(ctx); rerr != nil {
						err = errors.Join(err, rerr)
					}
				}
				mu.Lock()
				switch {
				case err == nil:
					wins[id]++
				case errors.Is(err, store.ErrDuplicate):
					dups++
				default:
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(wins) != distinct {
		t.Errorf("%d ids received, want %d", len(wins), distinct)
	}
	for id, n := range wins {
		if n != 1 {
			t.Errorf("%s received %d times", id, n)
		}
	}
	if dups != goroutines*each-distinct {
		t.Errorf("%d duplicates, want %d", dups, goroutines*each-distinct)
	}
	if n := len(pendingTurns(t, s)); n != distinct {
		t.Errorf("%d turns, want %d", n, distinct)
	}
}

func testPrune(t *testing.T, open Opener) {
	s, c, _ := newStore(t, open)
	ctx := context.Background()
	old := receive(t, s, "k", inbound("telegram", "old", "x"))
	oldPending := receive(t, s, "k", inbound("telegram", "old-pending", "x"))
	if err := s.SetTurnStatus(ctx, old.ID, store.Delivered, ""); err != nil {
		t.Fatal(err)
	}
	c.Add(48 * time.Hour)
	recent := receive(t, s, "k", inbound("telegram", "new", "x"))
	if err := s.SetTurnStatus(ctx, recent.ID, store.Failed, "x"); err != nil {
		t.Fatal(err)
	}

	n, err := s.PruneSeen(ctx, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("PruneSeen deleted %d, want 2", n)
	}
	if _, err := s.Receive(ctx, "k", inbound("telegram", "new", "x")); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("recent event after prune: %v, want ErrDuplicate", err)
	}

	n, err = s.PruneTurns(ctx, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("PruneTurns deleted %d, want 1 (the old delivered turn)", n)
	}
	pending, err := s.PendingTurns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != oldPending.ID {
		t.Errorf("pending after prune %+v, want the old pending turn kept", pending)
	}
	// Ids are not reused after pruning.
	next := receive(t, s, "k", inbound("telegram", "", "x"))
	if next.ID <= recent.ID {
		t.Errorf("id %d reused after prune (last was %d)", next.ID, recent.ID)
	}
}

func testReceiveRecordsChats(t *testing.T, open Opener) {
	s, c, _ := newStore(t, open)
	ctx := context.Background()
	dm := inbound("telegram", "e1", "hi")
	dm.Source.MessageID = "m1"
	receive(t, s, "telegram:dm:c1", dm)
	topic := inbound("telegram", "e2", "hi")
	topic.Source.ChatID, topic.Source.ChatType, topic.Source.ThreadID = "-100", chat.Thread, "7"
	receive(t, s, "telegram:thread:-100:7", topic)
	c.Add(time.Minute)
	later := inbound("telegram", "e3", "again")
	later.Source.ChatID, later.Source.ChatType, later.Source.UserID = "-100", chat.Group, "u2"
	receive(t, s, "telegram:group:-100:u2", later)

	got, err := s.FindChat(ctx, "telegram", "c1", "")
	want := store.Chat{SessionKey: "telegram:dm:c1", Source: dm.Source, SeenAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	want.Source.MessageID = ""
	if err != nil || got != want {
		t.Errorf("FindChat(c1) = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.FindChat(ctx, "telegram", "-100", ""); err != nil || got.SessionKey != "telegram:group:-100:u2" {
		t.Errorf("FindChat(-100) = %+v, %v; want the latest conversation there", got, err)
	}
	if got, err := s.FindChat(ctx, "telegram", "-100", "7"); err != nil || got.SessionKey != "telegram:thread:-100:7" {
		t.Errorf("FindChat(-100, 7) = %+v, %v; want the topic's conversation", got, err)
	}
	for _, miss := range [][3]string{{"telegram", "-100", "8"}, {"matrix", "c1", ""}, {"telegram", "c2", ""}} {
		if _, err := s.FindChat(ctx, miss[0], miss[1], miss[2]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("FindChat(%q) = %v, want ErrNotFound", miss, err)
		}
	}

	if _, err := s.ChatOfSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ChatOfSession before the session exists: %v, want ErrNotFound", err)
	}
	if err := s.SetSessionID(ctx, "telegram:thread:-100:7", "s1"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ChatOfSession(ctx, "s1"); err != nil || got.Source.ThreadID != "7" || got.Source.ChatID != "-100" {
		t.Errorf("ChatOfSession(s1) = %+v, %v; want the topic", got, err)
	}
	// A session replaced by /new no longer names the chat.
	if err := s.SetSessionID(ctx, "telegram:thread:-100:7", "s2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatOfSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ChatOfSession of a replaced session: %v, want ErrNotFound", err)
	}
}

func testOutbox(t *testing.T, open Opener) {
	s, c, reopen := newStore(t, open)
	ctx := context.Background()
	d, err := s.Enqueue(ctx, delivery("k1"))
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == 0 || len(d.Sends) != 2 || d.Sends[0].Status != store.Queued || d.Sends[1].Status != store.Queued {
		t.Fatalf("enqueued %+v, want an id and two queued sends", d)
	}
	c.Add(time.Second)
	again := delivery("k1")
	again.Text = "another text"
	was, err := s.Enqueue(ctx, again)
	if !errors.Is(err, store.ErrDuplicate) || was.ID != d.ID || was.Text != "the report" {
		t.Errorf("the same key again: %+v, %v; want the first delivery and ErrDuplicate", was, err)
	}
	if got, err := s.Delivery(ctx, d.ID); err != nil || len(got.Sends) != 2 || got.Text != "the report" {
		t.Errorf("after a duplicate the delivery is %+v, %v; want the first, with its 2 sends", got, err)
	}

	if err := s.SetSendStatus(ctx, d.ID, 0, store.Sending, "", nil); err != nil {
		t.Fatal(err)
	}
	other, err := s.Enqueue(ctx, delivery("k2"))
	if err != nil {
		t.Fatal(err)
	}
	unsent, err := s.UnsentDeliveries(ctx)
	if err != nil || len(unsent) != 2 || unsent[0].ID != d.ID || unsent[1].ID != other.ID || unsent[0].Sends[0].Status != store.Sending {
		t.Errorf("unsent = %+v, %v; want both, oldest first, the first sending", unsent, err)
	}

	if err := s.SetSendStatus(ctx, d.ID, 0, store.Sent, "ignored", []string{"m1", "m2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSendStatus(ctx, d.ID, 1, store.NotSent, "forbidden", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSendStatus(ctx, d.ID, 2, store.Sent, "", nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unknown send: %v, want ErrNotFound", err)
	}
	if _, err := s.Delivery(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unknown delivery: %v, want ErrNotFound", err)
	}
	if got, err := s.DeliveryByKey(ctx, "k2"); err != nil || got.ID != other.ID || len(got.Sends) != 2 {
		t.Errorf("DeliveryByKey(k2) = %+v, %v; want the second delivery", got, err)
	}
	if _, err := s.DeliveryByKey(ctx, "k3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unknown key: %v, want ErrNotFound", err)
	}

	// What was journalled survives a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	got, err := s.Delivery(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	sent, failed := got.Sends[0], got.Sends[1]
	if got.Key != "k1" || got.Target != "all" || got.Text != "the report" ||
		sent.Status != store.Sent || sent.Error != "" || !slices.Equal(sent.MessageIDs, []string{"m1", "m2"}) || sent.Target.ThreadID != "7" ||
		failed.Status != store.NotSent || failed.Error != "forbidden" || len(failed.MessageIDs) != 0 || failed.Platform != "matrix" {
		t.Errorf("after reopening: %+v", got)
	}
	unsent, err = s.UnsentDeliveries(ctx)
	if err != nil || len(unsent) != 1 || unsent[0].ID != other.ID {
		t.Errorf("unsent after settling the first = %+v, %v; want the second only", unsent, err)
	}
}

func testPruneDeliveries(t *testing.T, open Opener) {
	s, c, _ := newStore(t, open)
	ctx := context.Background()
	settled, err := s.Enqueue(ctx, delivery("settled"))
	if err != nil {
		t.Fatal(err)
	}
	pending, err := s.Enqueue(ctx, delivery("pending"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.SetSendStatus(ctx, settled.ID, i, store.Sent, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetSendStatus(ctx, pending.ID, 0, store.Sent, "", nil); err != nil {
		t.Fatal(err)
	}
	c.Add(48 * time.Hour)
	n, err := s.PruneTurns(ctx, 24*time.Hour)
	if err != nil || n != 1 {
		t.Errorf("PruneTurns = %d, %v; want the settled delivery pruned", n, err)
	}
	if _, err := s.Delivery(ctx, settled.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the settled delivery after pruning: %v, want ErrNotFound", err)
	}
	if got, err := s.Delivery(ctx, pending.ID); err != nil || len(got.Sends) != 2 {
		t.Errorf("the pending delivery after pruning: %+v, %v; want its 2 sends", got, err)
	}
	// Its key is free again; the pending one's is not.
	if _, err := s.Enqueue(ctx, delivery("settled")); err != nil {
		t.Errorf("a pruned key again: %v", err)
	}
	if _, err := s.Enqueue(ctx, delivery("pending")); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("a pending key again: %v, want ErrDuplicate", err)
	}
}

// Pairings lists what can still be approved and who was, newest first; a
// revoked user is not paired any more, and revoking again is ErrNotFound.
func testAdminPairings(t *testing.T, open Opener) {
	s, c, _ := newStore(t, open)
	ctx := context.Background()
	old, err := s.CreatePairing(ctx, "telegram", "u0", "Expired")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(store.PairingTTL + time.Minute)
	approved, err := s.CreatePairing(ctx, "telegram", "u1", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApprovePairing(ctx, approved.Code); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute)
	pending, err := s.CreatePairing(ctx, "matrix", "@bo:hs", "Bo")
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.Pairings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	approved.Approved = true
	if want := []store.Pairing{pending, approved}; !reflect.DeepEqual(list, want) {
		t.Errorf("pairings %+v, want %+v (not the expired %s)", list, want, old.Code)
	}
	if err := s.RevokePairing(ctx, "telegram", "u1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.IsPaired(ctx, "telegram", "u1"); ok || err != nil {
		t.Errorf("after revoking: paired %v (%v)", ok, err)
	}
	if err := s.RevokePairing(ctx, "telegram", "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking again: %v, want ErrNotFound", err)
	}
	if err := s.RevokePairing(ctx, "matrix", "@bo:hs"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking a user only pending: %v, want ErrNotFound", err)
	}
}

// Conversations are the chats messages came from with their session,
// last active first, on one platform or all.
func testAdminConversations(t *testing.T, open Opener) {
	s, c, _ := newStore(t, open)
	ctx := context.Background()
	receive(t, s, "k-telegram", inbound("telegram", "e1", "first"))
	if err := s.SetSessionID(ctx, "k-telegram", "sess-1"); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute)
	receive(t, s, "k-matrix", inbound("matrix", "e2", "second"))
	all, err := s.Conversations(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].SessionKey != "k-matrix" || all[0].SessionID != "" ||
		all[1].SessionKey != "k-telegram" || all[1].SessionID != "sess-1" || all[1].Source.Platform != "telegram" ||
		!all[0].SeenAt.Equal(c.Now()) {
		t.Errorf("conversations %+v", all)
	}
	one, err := s.Conversations(ctx, "telegram")
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 || one[0].SessionKey != "k-telegram" {
		t.Errorf("telegram's conversations %+v", one)
	}
}

// Turns lists the newest first, all, the pending or those that ended with
// an error, at most limit.
func testAdminTurns(t *testing.T, open Opener) {
	s, _, _ := newStore(t, open)
	ctx := context.Background()
	ok := receive(t, s, "k", inbound("telegram", "e1", "fine"))
	failed := receive(t, s, "k", inbound("telegram", "e2", "refused"))
	pending := receive(t, s, "k", inbound("telegram", "e3", "waiting"))
	if err := s.SetTurnStatus(ctx, ok.ID, store.Delivered, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTurnStatus(ctx, failed.ID, store.Delivered, "server answered 401: Invalid API key"); err != nil {
		t.Fatal(err)
	}
	ids := func(filter store.TurnFilter, limit int) []int64 {
		t.Helper()
		turns, err := s.Turns(ctx, filter, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, turn := range turns {
			out = append(out, turn.ID)
		}
		return out
	}
	if got, want := ids(store.AllTurns, 10), []int64{pending.ID, failed.ID, ok.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("all turns %v, want %v", got, want)
	}
	if got, want := ids(store.AllTurns, 2), []int64{pending.ID, failed.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("the last two %v, want %v", got, want)
	}
	if got, want := ids(store.PendingTurnsOnly, 10), []int64{pending.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("pending %v, want %v", got, want)
	}
	failedOnly, err := s.Turns(ctx, store.FailedTurnsOnly, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(failedOnly) != 1 || failedOnly[0].ID != failed.ID || failedOnly[0].Error != "server answered 401: Invalid API key" {
		t.Errorf("failed %+v", failedOnly)
	}
}
