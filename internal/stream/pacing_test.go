package stream_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/stream"
	"github.com/herald-chat/herald/internal/stream/streamtest"
)

// answerShape is one random answer and the platform it streams to.
type answerShape struct {
	caps     platform.Caps
	words    []string
	perWord  time.Duration // between two deltas
	pauses   map[int]time.Duration
	tools    map[int]string // a tool starts before delta i
	limitAt  int            // the platform answers "retry after" to this call (0: never)
	limitFor time.Duration
}

func randomShape(rng *rand.Rand) answerShape {
	chatBudget := platform.Bucket{Rate: 0.2 + rng.Float64()*5, Burst: 2 + rng.IntN(11)}
	s := answerShape{
		caps:    testCaps(),
		perWord: time.Duration(5+rng.IntN(300)) * time.Millisecond,
		pauses:  map[int]time.Duration{},
		tools:   map[int]string{},
	}
	s.caps.Typing = rng.IntN(2) == 0
	s.caps.Budgets = []platform.Budget{{Classes: platform.Messages, Bucket: chatBudget}}
	if rng.IntN(2) == 0 {
		s.caps.Budgets = append(s.caps.Budgets, platform.Budget{Classes: platform.Messages | platform.Typing, Account: true,
			Bucket: platform.Bucket{Rate: 0.1 + rng.Float64()*3, Burst: 2 + rng.IntN(20)}})
	}
	for range rng.IntN(600) {
		s.words = append(s.words, fmt.Sprintf("w%d ", rng.IntN(1000)))
	}
	for range rng.IntN(4) {
		s.pauses[rng.IntN(len(s.words)+1)] = time.Duration(rng.IntN(20)) * time.Second
	}
	for range rng.IntN(3) {
		s.tools[rng.IntN(len(s.words)+1)] = fmt.Sprint("tool", rng.IntN(3))
	}
	if rng.IntN(3) == 0 {
		s.limitAt, s.limitFor = 1+rng.IntN(30), time.Duration(rng.IntN(5000))*time.Millisecond
	}
	return s
}

// refill is the longest time a budget of the answer's messages takes to
// gain one token.
func (s answerShape) refill() time.Duration {
	var d time.Duration
	for _, b := range s.caps.Budgets {
		if b.Classes&platform.Messages != 0 {
			d = max(d, time.Duration(float64(time.Second)/b.Rate))
		}
	}
	return d
}

// Whatever the answer's shape, the platform's budgets are never overdrawn
// (the fake refuses and counts every call over them, and every call during
// a penalty), the chat ends showing exactly the final text, and a final
// text that fits one message goes out the moment the answer ends, unless
// the platform asked to wait then: a token is always held back for it.
func TestPacingKeepsToTheBudgets(t *testing.T) {
	cases := 300
	if testing.Short() {
		cases = 50
	}
	for i := range cases {
		shape := randomShape(rand.New(rand.NewPCG(uint64(i), 7)))
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { checkPacing(t, shape) })
		})
	}
}

func checkPacing(t *testing.T, s answerShape) {
	fake := streamtest.New(s.caps)
	if s.limitAt > 0 {
		fake.RateLimitNth(chatID, s.limitAt, s.limitFor)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := testOptions()
	o.EditInterval, o.TypingInterval = 800*time.Millisecond, 4*time.Second
	var gates stream.Gates
	gate, done := gates.For("fake", chatID, s.caps.Budgets)
	defer done()
	d := stream.Start(ctx, stream.Params{Adapter: fake, Target: target, Gate: gate, Options: o})
	for i, w := range s.words {
		if tool, ok := s.tools[i]; ok {
			d.Handle(agent.Event{Kind: agent.EventTool, Tool: &agent.ToolProgress{Tool: tool, Status: "running"}})
		}
		time.Sleep(s.pauses[i] + s.perWord)
		d.Handle(agent.Event{Kind: agent.EventDelta, Text: w})
	}
	final := strings.Join(s.words, "")
	end := time.Now()
	out := finish(t, d, final)

	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("%d calls over a budget or during a penalty: %s", len(v), describe(v))
	}
	want := format.StripThinking(final)
	if got := strings.Join(fake.Messages(chatID), ""); normalize(got) != normalize(want) {
		t.Fatalf("the chat shows %q, want %q", got, want)
	}
	if want == "" || len(out.MessageIDs) != 1 {
		return
	}
	for _, p := range fake.Penalties() {
		if !end.Before(p.From) && end.Before(p.Until) {
			return // the platform asked to wait past the end
		}
	}
	var last time.Time
	for _, c := range fake.Calls() {
		if c.Err == nil && (c.Kind == "send" || c.Kind == "edit") {
			last = c.At
		}
	}
	if late := last.Sub(end); late > 0 {
		t.Errorf("the final text went out %v after the end (a refill takes %v): no token was held back for it", late, s.refill())
	}
}

// A long answer trickling in to a chat without budgets (the web chat) is
// updated by time, not for every few characters: each update reads the
// whole answer, so updates every BufferThreshold characters would cost
// time quadratic in its size.
func TestTrickledAnswerUpdatesAreSpacedBySize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.MaxLength = 64000
		fake := streamtest.New(caps)
		o := testOptions()
		o.BufferThreshold = 24
		d := stream.Start(t.Context(), stream.Params{Adapter: fake, Target: target, Options: o})
		delta := strings.Repeat("word ", 12) + "\n" // 61 bytes: past the threshold each time
		const deltas = 4096                         // 250 KB at 61 KB/s
		for range deltas {
			d.Handle(agent.Event{Kind: agent.EventDelta, Text: delta})
			time.Sleep(time.Millisecond)
		}
		final := strings.Repeat(delta, deltas)
		if _, err := d.Finish(t.Context(), final); err != nil {
			t.Fatal(err)
		}
		updates := len(fake.Calls())
		if updates > deltas/2 {
			t.Errorf("%d calls for %d deltas: updates follow the characters, not the time", updates, deltas)
		}
		if got := strings.Join(fake.Messages(chatID), "\n"); normalize(got) != normalize(final) {
			t.Errorf("the chat does not show the answer")
		}
	})
}
