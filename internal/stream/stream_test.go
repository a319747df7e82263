package stream_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unicode"

	"go.uber.org/goleak"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/stream"
	"github.com/herald-chat/herald/internal/stream/streamtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	chatID = "chat-1"
	cursor = " ▉"
	// patience bounds every wait for the delivery to do something; tests
	// never rely on timing otherwise.
	patience = 20 * time.Second
)

var target = chat.Target{ChatID: chatID}

func testCaps() platform.Caps {
	return platform.Caps{
		MaxLength: 4096,
		Count:     format.Runes,
		Edit:      true,
		Typing:    false,
		Cursor:    true,
		Format:    format.Markdown,
	}
}

func testOptions() stream.Options {
	return stream.Options{
		Enabled:         true,
		Transport:       "edit",
		EditInterval:    2 * time.Millisecond,
		BufferThreshold: 24,
		Cursor:          cursor,
		TypingInterval:  2 * time.Millisecond,
		RetryDelay:      time.Millisecond,
	}
}

func start(t *testing.T, fake *streamtest.Fake, o stream.Options) *stream.Delivery {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return stream.Start(ctx, stream.Params{Adapter: fake, Target: target, Options: o})
}

func finish(t *testing.T, d *stream.Delivery, final string) stream.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	out, err := d.Finish(ctx, final)
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return out
}

// feed hands text to the delivery in deltas of size runes.
func feed(d *stream.Delivery, text string, size int) {
	r := []rune(text)
	for i := 0; i < len(r); i += size {
		d.Handle(agent.Event{Kind: agent.EventDelta, Text: string(r[i:min(i+size, len(r))])})
	}
}

// feedShowing feeds text and, every few deltas and at the end, waits until
// the chat shows everything so far, so that intermediate updates happen.
func feedShowing(t *testing.T, fake *streamtest.Fake, d *stream.Delivery, text string, size int) {
	t.Helper()
	r := []rune(text)
	for i := 0; i < len(r); i += size {
		end := min(i+size, len(r))
		d.Handle(agent.Event{Kind: agent.EventDelta, Text: string(r[i:end])})
		if (i/size)%8 == 7 || end == len(r) {
			awaitShown(t, fake, format.StripThinkingPartial(string(r[:end])))
		}
	}
}

// awaitShown waits until the chat shows the end of want, give or take
// whitespace, fence lines and the cursor, in its messages or its draft.
// Text too short to be shown yet is not waited for.
func awaitShown(t *testing.T, fake *streamtest.Fake, want string) {
	t.Helper()
	if visible(want) < 4 {
		return
	}
	w := []rune(normalize(want))
	end := string(w[max(len(w)-40, 0):])
	ok := fake.AwaitChat(chatID, patience, func(msgs []string, draft string) bool {
		all := strings.Join(append(msgs, draft), "\n")
		return strings.HasSuffix(normalize(strings.ReplaceAll(all, "▉", "")), end)
	})
	if !ok {
		t.Fatalf("the chat never showed %q; calls: %s", want, describe(fake.Calls()))
	}
}

// editsFailing returns a fake chat without a cursor whose edits fail with
// err while fail reports true (always, when fail is nil).
func editsFailing(err error, fail func() bool) *streamtest.Fake {
	caps := testCaps()
	caps.Cursor = false
	fake := streamtest.New(caps)
	fake.Hook = func(c streamtest.Call) error {
		if c.Kind == "edit" && (fail == nil || fail()) {
			return err
		}
		return nil
	}
	return fake
}

func describe(calls []streamtest.Call) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "\n  %s %s %q err=%v", c.Kind, c.ID, c.Text, c.Err)
	}
	return b.String()
}

func count(calls []streamtest.Call, kind string) int {
	n := 0
	for _, c := range calls {
		if c.Kind == kind && c.Err == nil {
			n++
		}
	}
	return n
}

const answer = "Sure! Here is how it works.\n\n" +
	"1. First, the gateway receives the message.\n" +
	"2. Then it asks the agent, which **thinks** and answers.\n" +
	"3. Finally the answer is streamed back, edit by edit.\n\n" +
	"```go\nfunc main() {\n\tfmt.Println(\"hello, world\")\n}\n```\n\n" +
	"That is all there is to it. 👍"

func TestStreamedAnswerEndsExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		d := start(t, fake, testOptions())
		feedShowing(t, fake, d, answer, 5)
		out := finish(t, d, answer)

		if got := fake.Messages(chatID); len(got) != 1 || got[0] != answer {
			t.Fatalf("chat shows %q, want exactly the answer", got)
		}
		if !slices.Equal(out.MessageIDs, fake.MessageIDs(chatID)) {
			t.Errorf("outcome ids %v, chat has %v", out.MessageIDs, fake.MessageIDs(chatID))
		}
		if !out.Shown || out.Sends != 1 || out.Edits < 2 {
			t.Errorf("outcome %+v: want shown, one send and several edits", out)
		}
	})
}

// A text complete from the start is sent as it is, split where it must
// be, with no typing indicator or status before it.
func TestSendShowsNothingBeforeTheText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.Typing, caps.MaxLength = true, 40
		fake := streamtest.New(caps)
		text := strings.Repeat("A complete notice. ", 4)
		out, err := stream.Send(context.Background(), stream.Params{Adapter: fake, Target: target, Options: testOptions()}, text)
		if err != nil {
			t.Fatal(err)
		}
		calls := fake.Calls()
		if count(calls, "typing") != 0 || count(calls, "edit") != 0 || count(calls, "send") != len(out.MessageIDs) || len(out.MessageIDs) < 2 {
			t.Errorf("calls %s, want only the sends of the split text", describe(calls))
		}
		if got := strings.Join(fake.Messages(chatID), ""); strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(text, " ", "") {
			t.Errorf("the chat shows %q, want the text", fake.Messages(chatID))
		}
	})
}

func TestFirstMessageHeldUntilFourVisibleCharacters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.Typing = true // typing calls show that the delivery looked at the text
		fake := streamtest.New(caps)
		d := start(t, fake, testOptions())

		for _, delta := range []string{"H", "i", " ", "\n", "t"} {
			d.Handle(agent.Event{Kind: agent.EventDelta, Text: delta})
			n := count(fake.Calls(), "typing")
			if !fake.Await(patience, func(calls []streamtest.Call) bool { return count(calls, "typing") >= n+2 }) {
				t.Fatal("typing stopped")
			}
		}
		if n := count(fake.Calls(), "send"); n != 0 {
			t.Fatalf("a message was sent with 3 visible characters: %s", describe(fake.Calls()))
		}
		d.Handle(agent.Event{Kind: agent.EventDelta, Text: "here"})
		awaitShown(t, fake, "Hi \nthere")
		finish(t, d, "Hi \nthere")
		for _, c := range fake.Calls() {
			if c.Kind == "send" && visible(c.Text) < 4 {
				t.Errorf("sent %q, with fewer than 4 visible characters", c.Text)
			}
		}
	})
}

func visible(s string) int {
	n := 0
	for _, r := range s {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

func TestIdenticalEditsAreSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.Cursor = false
		fake := streamtest.New(caps)
		d := start(t, fake, testOptions())
		const text = "Hello there, this is the whole answer."
		feedShowing(t, fake, d, text, 4)
		awaitShown(t, fake, text)
		before := len(fake.Calls())

		// Nothing visible changes: thinking is hidden.
		feed(d, "<think>more thinking</think>", 3)
		finish(t, d, text+"<think>more thinking</think>")

		if calls := fake.Calls(); len(calls) != before {
			t.Errorf("calls after the text was shown: %s", describe(calls[before:]))
		}
		last := map[string]string{}
		for _, c := range fake.Calls() {
			if c.Kind == "edit" && last[c.ID] == c.Text {
				t.Errorf("edit of %s repeats %q", c.ID, c.Text)
			}
			if c.Kind == "send" || c.Kind == "edit" {
				last[c.ID] = c.Text
			}
		}
	})
}

func TestCursorOnIntermediateEditsOnly(t *testing.T) {
	for _, withCursor := range []bool{true, false} {
		t.Run(fmt.Sprint("cursor=", withCursor), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				caps := testCaps()
				caps.Cursor = withCursor
				fake := streamtest.New(caps)
				d := start(t, fake, testOptions())
				feedShowing(t, fake, d, answer, 6)
				intermediate := fake.Calls()
				finish(t, d, answer)

				for _, c := range intermediate {
					if c.Kind != "send" && c.Kind != "edit" {
						continue
					}
					if withCursor && !strings.HasSuffix(c.Text, cursor) {
						t.Errorf("intermediate %s %q has no cursor", c.Kind, c.Text)
					}
					if !withCursor && strings.Contains(c.Text, "▉") {
						t.Errorf("%s %q has a cursor the platform does not allow", c.Kind, c.Text)
					}
				}
				if len(intermediate) == 0 {
					t.Fatal("no intermediate updates")
				}
				for _, m := range fake.Messages(chatID) {
					if strings.Contains(m, "▉") {
						t.Errorf("final message %q has the cursor", m)
					}
				}
			})
		})
	}
}

func TestThinkingIsNeverShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		d := start(t, fake, testOptions())
		const upstream = "<think>The user greets me. I should greet back politely.</think>\n\nHello! How can I help? " +
			"<thinking>maybe offer examples</thinking>For example, ask me about the weather."
		feedShowing(t, fake, d, upstream, 3)
		finish(t, d, upstream)

		for _, c := range fake.Calls() {
			if strings.Contains(c.Text, "think") || strings.Contains(c.Text, "greet") || strings.Contains(c.Text, "<") {
				t.Errorf("%s showed thinking: %q", c.Kind, c.Text)
			}
		}
		want := "Hello! How can I help? For example, ask me about the weather."
		if got := fake.Messages(chatID); len(got) != 1 || got[0] != want {
			t.Errorf("chat shows %q, want %q", got, want)
		}
	})
}

func TestToolStatusLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		d := start(t, fake, testOptions())
		feedShowing(t, fake, d, "Let me look that up.", 4)
		awaitShown(t, fake, "Let me look that up.")

		search := &agent.ToolProgress{Tool: "web_search", Emoji: "🔍", Label: "searching the web", ToolCallID: "call-1", Status: "running"}
		d.Handle(agent.Event{Kind: agent.EventTool, Tool: search})
		awaitShown(t, fake, "Let me look that up.\n\n🔍 searching the web…")

		d.Handle(agent.Event{Kind: agent.EventTool, Tool: &agent.ToolProgress{Tool: "web_search", ToolCallID: "call-1", Status: "completed"}})
		d.Handle(agent.Event{Kind: agent.EventTool, Tool: &agent.ToolProgress{Tool: "calculator", ToolCallID: "call-2", Status: "running"}})
		awaitShown(t, fake, "Let me look that up.\n\ncalculator…")

		d.Handle(agent.Event{Kind: agent.EventTool, Tool: &agent.ToolProgress{Tool: "calculator", ToolCallID: "call-2", Status: "completed"}})
		feed(d, " Found it: 42.", 4)
		final := "Let me look that up. Found it: 42."
		finish(t, d, final)
		if got := fake.Messages(chatID); len(got) != 1 || got[0] != final {
			t.Errorf("chat shows %q, want %q", got, final)
		}
	})
}

// A tool that runs before any answer text shows as a status line of its
// own, which the answer then replaces; it does not count as shown text.
func TestToolStatusBeforeAnyText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		shown := make(chan struct{}, 1)
		d := stream.Start(context.Background(), stream.Params{Adapter: fake, Target: target,
			Options: testOptions(), BeforeShown: func() { shown <- struct{}{} }})
		d.Handle(agent.Event{Kind: agent.EventTool, Tool: &agent.ToolProgress{Tool: "web_search", Emoji: "🔍", Label: "searching the web", Status: "running"}})
		awaitShown(t, fake, "🔍 searching the web…")
		select {
		case <-shown:
			t.Fatal("a status line alone counted as answer text")
		default:
		}
		d.Handle(agent.Event{Kind: agent.EventTool, Tool: &agent.ToolProgress{Tool: "web_search", Status: "completed"}})
		feed(d, "The answer is 42.", 4)
		finish(t, d, "The answer is 42.")
		if got := fake.Messages(chatID); len(got) != 1 || got[0] != "The answer is 42." {
			t.Errorf("chat shows %q, want the answer in the status line's message", got)
		}
		<-shown
	})
}

// longAnswer is over 10,000 characters, with code blocks that straddle
// the split points and characters outside the BMP.
func longAnswer() string {
	var b strings.Builder
	for i := 0; b.Len() < 12000; i++ {
		fmt.Fprintf(&b, "## Part %d 🚀\n\nThis paragraph explains part %d in some detail, with words enough to fill a line or two of text. ", i, i)
		b.WriteString("It goes on a little, so that paragraphs are of different lengths.\n\n")
		b.WriteString("```python\n")
		for j := range 25 {
			fmt.Fprintf(&b, "    value_%d = compute(%d, 'ünïcödé 😀')  # line %d\n", j, i*j, j)
		}
		b.WriteString("```\n\n")
	}
	b.WriteString("The end.")
	return b.String()
}

// normalize drops fence lines and whitespace, to compare texts that were
// split and had fences closed and reopened.
func normalize(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if format.OpenFence(line) != "" || strings.HasPrefix(strings.TrimSpace(line), "```") {
			continue
		}
		for _, r := range line {
			if !unicode.IsSpace(r) {
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

func TestLongAnswerIsSplitKeepingFences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.MaxLength = 1000
		caps.Count = format.UTF16
		fake := streamtest.New(caps)
		d := start(t, fake, testOptions())
		text := longAnswer()
		feedShowing(t, fake, d, text, 40)
		if n := len(fake.Messages(chatID)); n < 2 {
			t.Errorf("only %d message(s) while streaming, want the answer split", n)
		}
		out := finish(t, d, text)

		msgs := fake.Messages(chatID)
		if len(msgs) < 12 {
			t.Errorf("%d messages for %d characters", len(msgs), len(text))
		}
		for i, m := range msgs {
			if n := format.Length(m, format.UTF16); n > 1000 {
				t.Errorf("message %d has %d UTF-16 units", i, n)
			}
			if f := format.OpenFence(m); f != "" {
				t.Errorf("message %d leaves %q open:\n%s", i, f, m)
			}
			if strings.Contains(m, "▉") {
				t.Errorf("message %d keeps the cursor", i)
			}
		}
		if normalize(strings.Join(msgs, "\n")) != normalize(text) {
			t.Errorf("the messages do not hold the answer exactly once")
		}
		for _, c := range fake.Calls() {
			if c.Err != nil {
				t.Errorf("%s failed: %v", c.Kind, c.Err)
			}
		}
		if !slices.Equal(out.MessageIDs, fake.MessageIDs(chatID)) {
			t.Errorf("outcome ids %v, chat has %v", out.MessageIDs, fake.MessageIDs(chatID))
		}
	})
}

func isRateLimit(err error) bool {
	var rl *platform.RateLimitError
	return errors.As(err, &rl)
}

// checkPenalties verifies no call reached a chat while it was penalized.
func checkPenalties(t *testing.T, fake *streamtest.Fake) {
	t.Helper()
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("calls during a penalty: %s", describe(v))
	}
	for _, p := range fake.Penalties() {
		for _, c := range fake.Calls() {
			if c.ChatID == p.ChatID && c.At.After(p.From) && c.At.Before(p.Until) {
				t.Errorf("%s at %v, inside the penalty %v–%v", c.Kind, c.At, p.From, p.Until)
			}
		}
	}
}

func TestRateLimitStopsEverythingThenCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.Typing = true
		fake := streamtest.New(caps)
		fake.RateLimitNth(chatID, 4, 300*time.Millisecond)
		d := start(t, fake, testOptions())

		// The answer streams until the platform answers "retry after";
		// the rest of it comes during the penalty.
		r := []rune(answer)
		i := 0
		limited := func(calls []streamtest.Call) bool {
			return slices.ContainsFunc(calls, func(c streamtest.Call) bool { return isRateLimit(c.Err) })
		}
		for ; i < len(r) && !limited(fake.Calls()); i += 3 {
			d.Handle(agent.Event{Kind: agent.EventDelta, Text: string(r[i:min(i+3, len(r))])})
			shown := normalize(format.StripThinking(string(r[:min(i+3, len(r))])))
			fake.Await(patience, func(calls []streamtest.Call) bool {
				return limited(calls) || (len(calls) > 0 && normalize(strings.TrimSuffix(calls[len(calls)-1].Text, cursor)) == shown && calls[len(calls)-1].Err == nil) || visible(shown) < 4
			})
		}
		if !limited(fake.Calls()) {
			t.Fatal("the rate limit never happened")
		}
		feed(d, string(r[i:]), 3)
		handled := time.Now()
		out := finish(t, d, answer)

		checkPenalties(t, fake)
		if got := fake.Messages(chatID); len(got) != 1 || got[0] != answer {
			t.Errorf("chat shows %q, want the answer once", got)
		}
		if out.RateLimitWaits < 1 {
			t.Errorf("outcome %+v counts no rate-limit wait", out)
		}
		p := fake.Penalties()[0]
		if !handled.Before(p.Until) {
			t.Fatalf("the rest of the text was handed over at %v, not during the penalty until %v", handled, p.Until)
		}
		for _, c := range fake.Calls() {
			if !c.At.Before(p.Until) {
				if strings.TrimSuffix(c.Text, cursor) != answer {
					t.Errorf("first call after the penalty: %s %q, want all the text at once; calls %s; penalty %v", c.Kind, c.Text, describe(fake.Calls()), p)
				}
				break
			}
		}
	})
}

func TestRateLimitGateIsSharedByTheChat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		fake.RateLimitNth(chatID, 4, 300*time.Millisecond)
		var gates stream.Gates
		gate, done := gates.For("fake", chatID, nil)
		defer done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a := stream.Start(ctx, stream.Params{Adapter: fake, Target: target, Gate: gate, Options: testOptions()})
		b := stream.Start(ctx, stream.Params{Adapter: fake, Target: target, Gate: gate, Options: testOptions()})
		textA := "First delivery: " + strings.Repeat("alpha ", 40)
		textB := "Second delivery: " + strings.Repeat("beta ", 40)
		ra, rb := []rune(textA), []rune(textB)
		for i := 0; i < max(len(ra), len(rb)); i += 4 {
			if i < len(ra) {
				a.Handle(agent.Event{Kind: agent.EventDelta, Text: string(ra[i:min(i+4, len(ra))])})
			}
			if i < len(rb) {
				b.Handle(agent.Event{Kind: agent.EventDelta, Text: string(rb[i:min(i+4, len(rb))])})
			}
			if i%40 == 0 { // let some calls happen while the text grows
				n := len(fake.Calls())
				fake.Await(patience, func(calls []streamtest.Call) bool { return len(calls) > n })
			}
		}
		if !fake.Await(patience, func(calls []streamtest.Call) bool { return len(calls) >= 4 }) {
			t.Fatal("too few calls")
		}
		finish(t, a, textA)
		finish(t, b, textB)

		checkPenalties(t, fake)
		got := fake.Messages(chatID)
		slices.Sort(got)
		if want := []string{textA, textB}; !slices.Equal(got, want) {
			t.Errorf("chat shows %q, want %q", got, want)
		}
	})
}

func TestCannotEditSendsTheRestAsNewMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := editsFailing(platform.ErrCannotEdit, nil)
		d := start(t, fake, testOptions())
		first := "The first part of the answer."
		feed(d, first, 100)
		awaitShown(t, fake, first)
		feed(d, " And then the second part, which could not be added by editing.", 5)
		final := first + " And then the second part, which could not be added by editing."
		out := finish(t, d, final)

		msgs := fake.Messages(chatID)
		if len(msgs) < 2 || msgs[0] != first {
			t.Fatalf("chat shows %q, want the first part then the rest", msgs)
		}
		if strings.Join(msgs, " ") != final {
			t.Errorf("messages %q do not make up %q", msgs, final)
		}
		if out.Edits != 0 || out.Sends != len(msgs) {
			t.Errorf("outcome %+v", out)
		}
	})
}

func TestCannotEditWithDifferentFinalReplacesTheMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := editsFailing(platform.ErrCannotEdit, nil)
		d := start(t, fake, testOptions())
		feed(d, "A draft answer that will change.", 100)
		awaitShown(t, fake, "A draft answer that will change.")
		final := "⚠️ The agent failed: the answer above was wrong."
		finish(t, d, final)
		if got := fake.Messages(chatID); len(got) != 1 || got[0] != final {
			t.Errorf("chat shows %q, want only %q", got, final)
		}
	})
}

func TestStreamingOffSendsOnce(t *testing.T) {
	off := testOptions()
	off.Enabled = false
	transportOff := testOptions()
	transportOff.Transport = "off"
	noEdit := testCaps()
	noEdit.Edit = false
	for _, tc := range []struct {
		name string
		caps platform.Caps
		opts stream.Options
	}{
		{"disabled", testCaps(), off},
		{"transport off", testCaps(), transportOff},
		{"platform cannot edit", noEdit, testOptions()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fake := streamtest.New(tc.caps)
				d := start(t, fake, tc.opts)
				feed(d, answer, 5)
				out := finish(t, d, answer)
				calls := fake.Calls()
				if len(calls) != 1 || calls[0].Kind != "send" || calls[0].Text != answer {
					t.Errorf("calls: %s; want one send of the answer", describe(calls))
				}
				if out.Sends != 1 || out.Edits != 0 || !out.Shown {
					t.Errorf("outcome %+v", out)
				}
			})
		})
	}
}

func TestStreamingOffSplitsLongAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.MaxLength = 500
		fake := streamtest.New(caps)
		o := testOptions()
		o.Enabled = false
		d := start(t, fake, o)
		text := longAnswer()
		out := finish(t, d, text)
		want := format.Split(text, 500, format.Runes)
		if got := fake.Messages(chatID); !slices.Equal(got, want) {
			t.Errorf("chat shows %d messages, want the %d chunks of format.Split", len(got), len(want))
		}
		if out.Edits != 0 || out.Sends != len(want) {
			t.Errorf("outcome %+v", out)
		}
	})
}

func TestDraftTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.Draft = true
		fake := streamtest.New(caps)
		o := testOptions()
		o.Transport = "auto"
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		d := stream.Start(ctx, stream.Params{Adapter: fake, Target: target, Options: o})
		feedShowing(t, fake, d, answer, 5)
		out := finish(t, d, answer)

		calls := fake.Calls()
		if count(calls, "draft") < 2 || count(calls, "send") != 1 || count(calls, "edit") != 0 {
			t.Errorf("calls: %s; want drafts then one send", describe(calls))
		}
		if got := fake.Messages(chatID); len(got) != 1 || got[0] != answer {
			t.Errorf("chat shows %q", got)
		}
		if fake.DraftText(chatID) != "" {
			t.Errorf("the draft is still there")
		}
		if out.Drafts < 2 || out.Sends != 1 || !out.Shown {
			t.Errorf("outcome %+v", out)
		}
	})
}

// Drafts are used only where the chat's Caps have them, even when the
// transport asks for them: elsewhere the answer grows by edits.
func TestDraftNotUsedWhereTheChatHasNone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, transport := range []string{"auto", "draft"} {
			fake := streamtest.New(testCaps()) // no drafts in this chat
			o := testOptions()
			o.Transport = transport
			d := start(t, fake, o)
			feedShowing(t, fake, d, answer, 5)
			finish(t, d, answer)
			if n, edits := count(fake.Calls(), "draft"), count(fake.Calls(), "edit"); n != 0 || edits == 0 {
				t.Errorf("transport %s: %d drafts and %d edits in a chat without drafts, want edits only", transport, n, edits)
			}
		}
	})
}

func TestDraftFailureFallsBackToEdits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.Draft = true
		fake := streamtest.New(caps)
		fake.Hook = func(c streamtest.Call) error {
			if c.Kind == "draft" {
				return errors.New("drafts are not allowed here")
			}
			return nil
		}
		o := testOptions()
		o.Transport = "draft"
		d := start(t, fake, o)
		feedShowing(t, fake, d, answer, 5)
		finish(t, d, answer)
		calls := fake.Calls()
		if count(calls, "edit") == 0 {
			t.Errorf("no edits after drafts failed: %s", describe(calls))
		}
		if got := fake.Messages(chatID); len(got) != 1 || got[0] != answer {
			t.Errorf("chat shows %q", got)
		}
	})
}

func TestFinalTextDifferentFromDeltasShownOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		d := start(t, fake, testOptions())
		partial := "The answer began like this, and then"
		feedShowing(t, fake, d, partial, 4)
		awaitShown(t, fake, partial)
		final := partial + "\n\n⚠️ The agent server stopped answering."
		finish(t, d, final)
		got := fake.Messages(chatID)
		if len(got) != 1 || got[0] != final {
			t.Errorf("chat shows %q, want %q once", got, final)
		}
	})
}

func TestFinalTextRewrittenOverSeveralMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.MaxLength = 300
		fake := streamtest.New(caps)
		d := start(t, fake, testOptions())
		var streamed strings.Builder
		for i := range 150 {
			fmt.Fprintf(&streamed, "word%d ", i)
		}
		feedShowing(t, fake, d, streamed.String(), 20)
		if len(fake.Messages(chatID)) < 3 {
			t.Fatalf("want several messages while streaming, got %q", fake.Messages(chatID))
		}
		final := "A short final answer that replaces everything.\n\n⚠️ Partial answer discarded."
		finish(t, d, final)
		if got := fake.Messages(chatID); len(got) != 1 || got[0] != final {
			t.Errorf("chat shows %q, want only %q", got, final)
		}
	})
}

func TestTypingUntilFirstText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.Typing = true
		fake := streamtest.New(caps)
		d := start(t, fake, testOptions())
		if !fake.Await(patience, func(calls []streamtest.Call) bool { return count(calls, "typing") >= 3 }) {
			t.Fatal("typing was not refreshed")
		}
		feed(d, answer, 50)
		awaitShown(t, fake, answer)
		finish(t, d, answer)

		var firstShown time.Time
		for _, c := range fake.Calls() {
			if c.Kind == "send" && c.Err == nil {
				firstShown = c.At
				break
			}
		}
		for _, c := range fake.Calls() {
			if c.Kind == "typing" && c.At.After(firstShown) {
				t.Errorf("typing at %v, after the first text at %v", c.At, firstShown)
			}
		}
	})
}

func TestTypingWhileStreamingIsOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.Typing = true
		fake := streamtest.New(caps)
		o := testOptions()
		o.Enabled = false
		d := start(t, fake, o)
		feed(d, answer, 50)
		if !fake.Await(patience, func(calls []streamtest.Call) bool { return count(calls, "typing") >= 2 }) {
			t.Fatal("no typing")
		}
		finish(t, d, answer)
		if n := count(fake.Calls(), "send"); n != 1 {
			t.Errorf("%d sends", n)
		}
	})
}

// With the typing indicator off (Hermes's typing_indicator: false), a
// platform that has one is never sent it.
func TestNoTyping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.Typing = true
		fake := streamtest.New(caps)
		o := testOptions()
		o.NoTyping = true
		d := start(t, fake, o)
		time.Sleep(10 * time.Second)
		feed(d, answer, 50)
		finish(t, d, answer)
		if n := count(fake.Calls(), "typing"); n != 0 {
			t.Errorf("%d typing calls, want none", n)
		}
	})
}

// BeforeShown is called once, before the first call that puts answer text
// in a message, while that call has not reached the platform yet.
func TestBeforeShownCalledOnceBeforeTheText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		var calls atomic.Int32
		fake.Hook = func(c streamtest.Call) error {
			if (c.Kind == "send" || c.Kind == "edit") && calls.Load() == 0 {
				t.Errorf("%s %q before BeforeShown", c.Kind, c.Text)
			}
			return nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		d := stream.Start(ctx, stream.Params{Adapter: fake, Target: target, Options: testOptions(), BeforeShown: func() {
			calls.Add(1)
		}})
		feedShowing(t, fake, d, "Hello, world!", 3)
		feed(d, " More text.", 3)
		finish(t, d, "Hello, world! More text.")
		if n := calls.Load(); n != 1 {
			t.Errorf("BeforeShown called %d times", n)
		}
	})
}

// Drafts vanish: showing them is not showing the answer, which is first
// kept by the final message.
func TestBeforeShownWaitsForTheFinalMessageAfterDrafts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.Draft = true
		fake := streamtest.New(caps)
		o := testOptions()
		o.Transport = "auto"
		var before atomic.Int32
		fake.Hook = func(c streamtest.Call) error {
			if c.Kind == "send" && before.Load() != 1 {
				t.Errorf("the final send came with BeforeShown called %d times", before.Load())
			}
			if c.Kind == "draft" && before.Load() != 0 {
				t.Errorf("BeforeShown called before a draft")
			}
			return nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		d := stream.Start(ctx, stream.Params{Adapter: fake, Target: target, Options: o, BeforeShown: func() { before.Add(1) }})
		feedShowing(t, fake, d, "A draft that grows for a while.", 4)
		finish(t, d, "A draft that grows for a while.")
		if n := count(fake.Calls(), "draft"); n == 0 {
			t.Fatal("no draft was shown: the test tested nothing")
		}
		if n := before.Load(); n != 1 {
			t.Errorf("BeforeShown called %d times", n)
		}
	})
}

// A first call refused for the platform's rate limit showed nothing:
// Refused says so, and BeforeShown comes again before the next try. A
// call that failed otherwise may have been applied: no Refused.
func TestRefusedFirstCallIsNotShown(t *testing.T) {
	for _, c := range []struct {
		name         string
		err          error
		refused, set int32
	}{
		{"rate limited", &platform.RateLimitError{RetryAfter: 2 * time.Second}, 1, 2},
		{"connection reset", errors.New("connection reset"), 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fake := streamtest.New(testCaps())
				var failed atomic.Bool
				fake.Hook = func(call streamtest.Call) error {
					if call.Kind == "send" && !failed.Swap(true) {
						return c.err
					}
					return nil
				}
				var before, refused atomic.Int32
				d := stream.Start(context.Background(), stream.Params{Adapter: fake, Target: target, Options: testOptions(),
					BeforeShown: func() { before.Add(1) }, Refused: func() { refused.Add(1) }})
				finish(t, d, "Hello.")
				if before.Load() != c.set || refused.Load() != c.refused {
					t.Errorf("BeforeShown called %d times and Refused %d, want %d and %d", before.Load(), refused.Load(), c.set, c.refused)
				}
			})
		})
	}
}

func TestFinishRetriesTransientErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		var failed atomic.Bool
		fake.Hook = func(c streamtest.Call) error {
			if c.Kind == "send" && !failed.Swap(true) {
				return errors.New("connection reset")
			}
			return nil
		}
		o := testOptions()
		o.Enabled = false
		d := start(t, fake, o)
		finish(t, d, answer)
		if got := fake.Messages(chatID); len(got) != 1 || got[0] != answer {
			t.Errorf("chat shows %q", got)
		}
	})
}

func TestFinishReportsUndeliveredAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		fake.Hook = func(c streamtest.Call) error {
			if c.Kind == "send" {
				return errors.New("platform down")
			}
			return nil
		}
		d := start(t, fake, testOptions())
		feed(d, answer, 10)
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		out, err := d.Finish(ctx, answer)
		if !errors.Is(err, stream.ErrNotDelivered) {
			t.Fatalf("Finish error %v, want ErrNotDelivered", err)
		}
		if out.Shown || len(out.MessageIDs) != 0 {
			t.Errorf("outcome %+v", out)
		}
	})
}

func TestFinishGivesUpWhenContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		fake.RateLimitNth(chatID, 1, time.Hour)
		o := testOptions()
		o.Enabled = false
		d := start(t, fake, o)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			fake.Await(patience, func(calls []streamtest.Call) bool { return len(calls) > 0 })
			cancel()
		}()
		_, err := d.Finish(ctx, answer)
		if !errors.Is(err, stream.ErrNotDelivered) || !errors.Is(err, context.Canceled) {
			t.Errorf("Finish error %v", err)
		}
		checkPenalties(t, fake)
	})
}

func TestStartContextEndsTheGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		ctx, cancel := context.WithCancel(context.Background())
		d := stream.Start(ctx, stream.Params{Adapter: fake, Target: target, Options: testOptions()})
		feed(d, answer, 10)
		cancel()
		// Finish still delivers with its own context.
		finish(t, d, answer)
		if got := fake.Messages(chatID); len(got) != 1 || got[0] != answer {
			t.Errorf("chat shows %q", got)
		}
	})
}

func TestFinishTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		d := start(t, fake, testOptions())
		finish(t, d, "Done.")
		if _, err := d.Finish(context.Background(), "Done."); err == nil {
			t.Error("second Finish did not fail")
		}
		d.Handle(agent.Event{Kind: agent.EventDelta, Text: "late"}) // ignored, no panic
	})
}

func TestEmptyFinalRemovesIntermediateText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(testCaps())
		d := start(t, fake, testOptions())
		feed(d, "Something that will be withdrawn.", 100)
		awaitShown(t, fake, "Something that will be withdrawn.")
		out := finish(t, d, "<think>nothing to say</think>")
		if got := fake.Messages(chatID); len(got) != 0 {
			t.Errorf("chat shows %q, want nothing", got)
		}
		if out.Deletes != 1 || len(out.MessageIDs) != 0 {
			t.Errorf("outcome %+v", out)
		}
	})
}

func TestEditRefusedAtFinishKeepsWhatIsShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var refuse atomic.Bool
		fake := editsFailing(platform.ErrCannotEdit, refuse.Load)
		d := start(t, fake, testOptions())
		first := "The first part, shown while streaming."
		feedShowing(t, fake, d, first, 6)
		refuse.Store(true)
		final := first + " The rest, which arrives only with the final text."
		out := finish(t, d, final)
		msgs := fake.Messages(chatID)
		if len(msgs) != 2 || msgs[0] != first || first+" "+msgs[1] != final {
			t.Errorf("chat shows %q, want the shown part then the rest", msgs)
		}
		if !slices.Equal(out.MessageIDs, fake.MessageIDs(chatID)) {
			t.Errorf("outcome ids %v, chat has %v", out.MessageIDs, fake.MessageIDs(chatID))
		}
	})
}

func TestRepeatedEditFailuresStopEditing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := editsFailing(errors.New("internal server error"), nil)
		d := start(t, fake, testOptions())
		first := "Shown in the first message."
		feed(d, first, 100)
		awaitShown(t, fake, first)
		rest := " Then more text that cannot be edited in."
		feed(d, rest, 5)
		final := first + rest
		finish(t, d, final)
		msgs := fake.Messages(chatID)
		if len(msgs) < 2 || strings.Join(msgs, " ") != final {
			t.Errorf("chat shows %q, want %q over several messages", msgs, final)
		}
	})
}

func TestLongAnswerWithRateLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := testCaps()
		caps.MaxLength = 700
		fake := streamtest.New(caps)
		fake.RateLimitNth(chatID, 3, 50*time.Millisecond)
		fake.RateLimitNth(chatID, 9, 50*time.Millisecond)
		d := start(t, fake, testOptions())
		text := longAnswer()[:5000]
		feedShowing(t, fake, d, text, 60)
		out := finish(t, d, text)
		checkPenalties(t, fake)
		msgs := fake.Messages(chatID)
		if normalize(strings.Join(msgs, "\n")) != normalize(text) {
			t.Errorf("the messages do not hold the answer exactly once")
		}
		for i, m := range msgs {
			if format.OpenFence(m) != "" || format.Length(m, format.Runes) > 700 {
				t.Errorf("message %d is unbalanced or too long:\n%s", i, m)
			}
		}
		if out.RateLimitWaits < 2 {
			t.Errorf("outcome %+v", out)
		}
	})
}

// TestWaitingDeliveryHoldsNoGoroutine checks that between updates a
// delivery holds no goroutine: a gateway keeps thousands of answers
// streaming, each mostly waiting for its next update.
func TestWaitingDeliveryHoldsNoGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		before := goleak.IgnoreCurrent()
		fake := streamtest.New(testCaps())
		o := testOptions()
		o.EditInterval, o.BufferThreshold = time.Hour, 1000
		d := start(t, fake, o)
		d.Handle(agent.Event{Kind: agent.EventDelta, Text: "Hello there"})
		awaitShown(t, fake, "Hello there")
		feed(d, " and a little more, below the threshold", 3)
		if err := goleak.Find(before); err != nil {
			t.Fatalf("a waiting delivery holds a goroutine: %v", err)
		}
		if out := finish(t, d, "Hello there and a little more, below the threshold"); out.Sends != 1 || out.Edits != 1 {
			t.Fatalf("sends %d, edits %d; want the first message then the final edit", out.Sends, out.Edits)
		}
	})
}

// appendingCaps are a chat whose messages are native streams that only
// grow (Slack's chat.startStream), with the status shown apart.
func appendingCaps() platform.Caps {
	caps := testCaps()
	caps.Appends, caps.Status = true, true
	return caps
}

// On a platform whose messages are streams, every intermediate update only
// adds to the message, the tool status goes to the Statuser and never into
// the text, and the final message is sealed once.
func TestAppendingStreamOnlyGrowsAndIsSealed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := streamtest.New(appendingCaps())
		s := streamtest.Streaming{Fake: fake}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		d := stream.Start(ctx, stream.Params{Adapter: s, Target: target, Options: testOptions()})
		feedShowing(t, fake, d, "Let me look that up.", 4)
		d.Handle(agent.Event{Kind: agent.EventTool, Tool: &agent.ToolProgress{Tool: "web_search", Emoji: "🔍", Label: "searching the web", ToolCallID: "c1", Status: "running"}})
		if !fake.Await(patience, func(calls []streamtest.Call) bool {
			return slices.ContainsFunc(calls, func(c streamtest.Call) bool { return c.Kind == "status" && c.Text == "🔍 searching the web…" })
		}) {
			t.Fatalf("the status never showed; calls: %s", describe(fake.Calls()))
		}
		d.Handle(agent.Event{Kind: agent.EventTool, Tool: &agent.ToolProgress{Tool: "web_search", ToolCallID: "c1", Status: "completed"}})
		feedShowing(t, fake, d, " Found it: 42.", 4)
		final := "Let me look that up. Found it: 42."
		out := finish(t, d, final)

		if got := fake.Messages(chatID); len(got) != 1 || got[0] != final {
			t.Errorf("chat shows %q, want %q", got, final)
		}
		calls := fake.Calls()
		for _, c := range calls {
			if c.Err != nil {
				t.Errorf("%s %q failed: %v", c.Kind, c.Text, c.Err)
			}
			if (c.Kind == "send" || c.Kind == "edit") && (strings.Contains(c.Text, "🔍") || strings.Contains(c.Text, "▉")) {
				t.Errorf("%s wrote %q into the stream", c.Kind, c.Text)
			}
		}
		if n := count(calls, "seal"); n != 1 || fake.Open(out.MessageIDs[0]) {
			t.Errorf("sealed %d times, open after: %v; calls: %s", n, fake.Open(out.MessageIDs[0]), describe(calls))
		}
		if last := calls[len(calls)-1]; last.Kind != "seal" {
			t.Errorf("last call %s, want the seal", last.Kind)
		}
		statuses := 0
		for _, c := range calls {
			if c.Kind == "status" {
				statuses++
			}
		}
		if statuses != 2 { // the tool, then back to thinking
			t.Errorf("%d status calls, want 2; calls: %s", statuses, describe(calls))
		}
	})
}

// An answer longer than a stream's limit goes on in a second stream; both
// are sealed, the first once complete.
func TestAppendingStreamSplitsLongAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caps := appendingCaps()
		caps.MaxLength = 120
		fake := streamtest.New(caps)
		s := streamtest.Streaming{Fake: fake}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		d := stream.Start(ctx, stream.Params{Adapter: s, Target: target, Options: testOptions()})
		feedShowing(t, fake, d, answer, 6)
		out := finish(t, d, answer)
		got := fake.Messages(chatID)
		if len(got) < 2 {
			t.Fatalf("want the answer over several messages, got %q", got)
		}
		for i, m := range got {
			if strings.Count(m, "```")%2 != 0 {
				t.Errorf("message %d leaves a code block open: %q", i, m)
			}
		}
		if joined := normalize(strings.Join(got, "\n")); !strings.Contains(joined, normalize("That is all there is to it. 👍")) {
			t.Errorf("the end of the answer is missing: %q", got)
		}
		for _, c := range fake.Calls() {
			if c.Err != nil {
				t.Errorf("%s %q failed: %v", c.Kind, c.Text, c.Err)
			}
		}
		for _, id := range out.MessageIDs {
			if fake.Open(id) {
				t.Errorf("message %s left open; calls: %s", id, describe(fake.Calls()))
			}
		}
	})
}
