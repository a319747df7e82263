package webchat

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/webchat/webchattest"
)

// fakeGateway answers each posted message the way the gateway streams:
// typing, a first chunk, edits ending in a cursor, then (once the test
// releases it) the final text, which it then saves as History returns it.
type fakeGateway struct {
	t       *testing.T
	a       *Adapter
	release chan struct{}
	once    sync.Once
	work    sync.WaitGroup

	mu       sync.Mutex
	saved    map[string][]chat.Message
	failNext bool // the next post is refused, as when the journal fails
}

func newFakeGateway(t *testing.T) *fakeGateway {
	g := &fakeGateway{t: t, release: make(chan struct{}), saved: map[string][]chat.Message{}}
	// Registered before the adapter's cleanups, so it runs after them:
	// answers still in flight are released and finish first.
	t.Cleanup(func() {
		g.finish()
		g.work.Wait()
	})
	return g
}

// finish lets the answers write their final text.
func (g *fakeGateway) finish() { g.once.Do(func() { close(g.release) }) }

func (g *fakeGateway) history(_ context.Context, src chat.Source) ([]chat.Message, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.saved[src.ChatID], nil
}

func (g *fakeGateway) handle(_ context.Context, in chat.Inbound) error {
	g.mu.Lock()
	fail := g.failNext
	g.failNext = false
	g.mu.Unlock()
	if fail {
		return errors.New("journal unavailable")
	}
	t := chat.TargetOf(in.Source)
	g.work.Go(func() {
		ctx := context.Background()
		if in.Text == "/new" {
			g.mu.Lock()
			g.saved[t.ChatID] = nil
			g.mu.Unlock()
			g.a.Send(ctx, t, "✨ New conversation started.")
			return
		}
		g.a.Typing(ctx, t)
		pause := func() { time.Sleep(30 * time.Millisecond) } // pacing, not synchronisation
		pause()
		id, err := g.a.Send(ctx, t, "Hel")
		if err != nil {
			g.t.Errorf("Send: %v", err)
			return
		}
		for _, partial := range []string{"Hello", "Hello **wor", "Hello **world**, still writing"} {
			pause()
			if err := g.a.Edit(ctx, t, id, partial+" ▌"); err != nil {
				g.t.Errorf("Edit: %v", err)
			}
		}
		<-g.release
		final := "Hello **world**, you said: " + in.Text
		if err := g.a.Edit(ctx, t, id, final); err != nil {
			g.t.Errorf("Edit: %v", err)
		}
		g.mu.Lock()
		g.saved[t.ChatID] = append(g.saved[t.ChatID],
			chat.Message{Role: chat.User, Content: in.Text},
			chat.Message{Role: chat.Assistant, Content: final})
		g.mu.Unlock()
	})
	return nil
}

// startWithGateway runs an adapter whose messages go to a fake gateway.
func startWithGateway(t *testing.T, opts Options, d platform.Deps) (*fakeGateway, string) {
	g := newFakeGateway(t)
	d.History = g.history
	a, ts := start(t, opts, d, g.handle)
	g.a = a
	return g, ts.URL
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

func do(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// pressEnter presses Enter as a keyboard does: one keyDown carrying the
// text, so that a page that cancels the keydown gets no newline. (chromedp's
// SendKeys sends the text in a separate char event, which a cancelled
// keydown does not stop, unlike a real keyboard.)
func pressEnter(t *testing.T, ctx context.Context, shift bool) {
	t.Helper()
	var modifiers int64
	if shift {
		modifiers = 8
	}
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeKeyDown, input.DispatchKeyEventTypeKeyUp} {
		p := input.DispatchKeyEventParams{Type: typ, Modifiers: modifiers, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
		if typ == input.DispatchKeyEventTypeKeyDown {
			p.Text, p.UnmodifiedText = "\r", "\r"
		}
		if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, p); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	ready    = `document.body.dataset.ready === "1"`
	botText  = `([...document.querySelectorAll("#messages .msg.bot")].at(-1)?.textContent ?? "").trim()`
	userText = `([...document.querySelectorAll("#messages .msg.user")].at(-1)?.textContent ?? "").trim()`
)

func TestBrowserConversation(t *testing.T) {
	ctx := webchattest.NewBrowser(t)
	g, url := startWithGateway(t, Options{}, platform.Deps{})

	do(t, ctx, chromedp.Navigate(url))
	webchattest.Wait(t, ctx, "the page to be ready", ready)

	do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#input"), "hi there"),
		chromedp.Click(chromedp.CSS("#send")),
	)
	webchattest.Wait(t, ctx, "the user's message", userText+` === "hi there"`)
	webchattest.Wait(t, ctx, "the partial answer", botText+`.includes("still writing ▌")`)
	if got := eval[string](t, ctx, `document.querySelector(".msg.bot strong").textContent`); got != "world" {
		t.Errorf("the partial answer's markdown: <strong> holds %q", got)
	}
	if eval[bool](t, ctx, `document.querySelector("#input").value !== ""`) {
		t.Error("the input was not cleared")
	}
	if p := os.Getenv("WEBCHAT_SCREENSHOT"); p != "" {
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	g.finish()
	webchattest.Wait(t, ctx, "the final answer", botText+` === "Hello world, you said: hi there"`)
	if got := eval[string](t, ctx, `document.querySelector(".msg.bot .body").innerHTML`); !strings.Contains(got, "<strong>world</strong>") {
		t.Errorf("the final answer is not rendered: %s", got)
	}
	if id := eval[string](t, ctx, `document.querySelector(".msg.user").dataset.id || ""`); id == "" {
		t.Error("the user's message has no id once sent")
	}

	// Enter sends, Shift+Enter makes a new line.
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#input"), "two"))
	pressEnter(t, ctx, true)
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#input"), "lines"))
	pressEnter(t, ctx, false)
	webchattest.Wait(t, ctx, "a two-line message", `[...document.querySelectorAll("#messages .msg.user .body")].at(-1)?.textContent === "two\nlines"`)
	if v := eval[string](t, ctx, `document.querySelector("#input").value`); v != "" {
		t.Errorf("after Enter the input holds %q", v)
	}
	webchattest.Wait(t, ctx, "its answer", botText+` === "Hello world, you said: two\nlines"`)

	// A reload shows the conversation again, from the history, once.
	do(t, ctx, chromedp.Reload())
	webchattest.Wait(t, ctx, "the page to be ready again", ready)
	got := eval[[]string](t, ctx, `[...document.querySelectorAll("#messages .msg")].map(e => e.className + ": " + e.textContent.trim())`)
	want := []string{"msg user: hi there", "msg bot: Hello world, you said: hi there", "msg user: two\nlines", "msg bot: Hello world, you said: two\nlines"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("after a reload\n got %q\nwant %q", got, want)
	}

	// "New conversation" clears the view and shows the gateway's answer.
	do(t, ctx, chromedp.Click(chromedp.CSS("#new")))
	webchattest.Wait(t, ctx, "the new conversation", botText+` === "✨ New conversation started."`)
	if n := eval[int](t, ctx, `document.querySelectorAll("#messages .msg").length`); n != 1 {
		t.Errorf("%d messages after New conversation, want the confirmation only", n)
	}
	do(t, ctx, chromedp.Reload())
	webchattest.Wait(t, ctx, "the page to be ready after New conversation", ready)
	if got := eval[string](t, ctx, `document.querySelector("#messages").textContent.trim()`); got != "✨ New conversation started." {
		t.Errorf("after New conversation and a reload: %q", got)
	}
}

func TestBrowserTokenAndRetry(t *testing.T) {
	ctx := webchattest.NewBrowser(t)
	g, url := startWithGateway(t, Options{Token: testToken}, platform.Deps{HTTPAddr: "0.0.0.0:8643"})

	// Without the token the page says what is missing.
	do(t, ctx, chromedp.Navigate(url))
	webchattest.Wait(t, ctx, "the token error", `!document.querySelector("#banner").hidden && document.querySelector("#banner").textContent.includes("token")`)

	// Opened afresh, as from the link Herald prints (a fragment change
	// alone would not load the page again).
	do(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(url+"/#token="+testToken))
	webchattest.Wait(t, ctx, "the page to be ready with the token", ready)
	if h := eval[string](t, ctx, `location.hash`); h != "" {
		t.Errorf("the token stays in the address bar: %q", h)
	}

	// The journal fails once: the message shows an error and a retry.
	g.mu.Lock()
	g.failNext = true
	g.mu.Unlock()
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#input"), "are you there?"))
	pressEnter(t, ctx, false)
	webchattest.Wait(t, ctx, "the send error", `(document.querySelector(".msg.user .error")?.textContent ?? "").includes("journal unavailable")`)
	do(t, ctx, chromedp.Click(chromedp.CSS(".msg.user .retry")))
	webchattest.Wait(t, ctx, "the retried message to be sent", `document.querySelector(".msg.user").dataset.id && !document.querySelector(".msg.user .error")`)
	g.finish()
	webchattest.Wait(t, ctx, "the answer", botText+` === "Hello world, you said: are you there?"`)

	// The token is kept for the tab: a reload without it still works.
	do(t, ctx, chromedp.Navigate(url))
	webchattest.Wait(t, ctx, "the page to be ready without the fragment", ready)
	webchattest.Wait(t, ctx, "the conversation", `document.querySelectorAll("#messages .msg").length === 2`)
}

// When Herald goes away, the page says it cannot reach it and is
// retrying, never the browser's raw "Failed to fetch"; a message sent
// meanwhile says it was not sent, and why, in the same words.
func TestBrowserCannotReachHerald(t *testing.T) {
	ctx := webchattest.NewBrowser(t)
	_, ts := start(t, Options{}, platform.Deps{}, nil)
	do(t, ctx, chromedp.Navigate(ts.URL))
	webchattest.Wait(t, ctx, "the page", ready)

	ts.CloseClientConnections()
	ts.Close()
	banner := `document.querySelector("#banner").textContent`
	webchattest.Wait(t, ctx, "the banner", `!document.querySelector("#banner").hidden && `+banner+`.includes("Cannot reach Herald, retrying…")`)
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#input"), "anyone?"))
	pressEnter(t, ctx, false)
	webchattest.Wait(t, ctx, "the send error", `(document.querySelector(".msg.user .error")?.textContent ?? "").includes("Not sent: cannot reach Herald")`)
	if page := eval[string](t, ctx, `document.body.textContent`); strings.Contains(page, "Failed to fetch") {
		t.Errorf("the page shows the browser's error: %q", page)
	}
}
