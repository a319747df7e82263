package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/platform/webchat/webchattest"
)

// startDemo runs `herald demo` in-process on a free loopback port.
func startDemo(t *testing.T) string {
	t.Helper()
	isolate(t)
	t.Setenv("HERALD_HTTP_ADDR", "127.0.0.1:0")
	cfg, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, &options{stdout: io.Discard, stderr: io.Discard}, cfg, func(a string) { addr <- a })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	})
	select {
	case a := <-addr:
		return "http://" + a
	case err := <-done:
		t.Fatalf("demo stopped: %v", err)
	}
	return ""
}

func browserEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

const lastBot = `([...document.querySelectorAll("#messages .msg.bot")].at(-1)?.textContent ?? "").trim()`

// The whole path in a real browser: page → web chat → runner → Hermes
// backend → simulator, and back as a stream; then a reload.
func TestDemoInABrowser(t *testing.T) {
	ctx := webchattest.NewBrowser(t) // first: it skips the test with -short
	url := startDemo(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/")); err != nil {
		t.Fatal(err)
	}
	webchattest.Wait(t, ctx, "the page", `document.body.dataset.ready === "1"`)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#input"), "hello herald"),
		chromedp.Click(chromedp.CSS("#send")),
	); err != nil {
		t.Fatal(err)
	}
	// The simulator's agent "runs a tool" first: its status line shows.
	webchattest.Wait(t, ctx, "the tool status line", lastBot+`.includes("searching the web")`)
	// The answer appears while it is written: an intermediate edit ends
	// with the streaming cursor.
	webchattest.Wait(t, ctx, "the answer while it streams", lastBot+`.startsWith("[Hermes simulator · turn 1]") && `+lastBot+`.endsWith("▉")`)
	webchattest.Wait(t, ctx, "the final answer", lastBot+`.includes("You said: \"hello herald\"") && !`+lastBot+`.includes("▉")`)
	// The simulator's tool progress showed while the tool ran, not at the end.
	final := browserEval[string](t, ctx, lastBot)
	if strings.Contains(final, "searching") {
		t.Errorf("the final answer kept the tool status line: %q", final)
	}

	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	webchattest.Wait(t, ctx, "the page after a reload", `document.body.dataset.ready === "1"`)
	got := browserEval[[]string](t, ctx, `[...document.querySelectorAll("#messages .msg")].map(e => e.textContent.trim())`)
	if len(got) != 2 || got[0] != "hello herald" || got[1] != final {
		t.Fatalf("after a reload the page shows %q, want the question and %q", got, final)
	}

	// The next message continues the same session: the simulator counts turn 2.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#input"), "again"),
		chromedp.Click(chromedp.CSS("#send")),
	); err != nil {
		t.Fatal(err)
	}
	webchattest.Wait(t, ctx, "the second answer", lastBot+`.startsWith("[Hermes simulator · turn 2]") && !`+lastBot+`.includes("▉")`)

	// Asked for markdown, the simulator shows what the web chat renders:
	// a list, a code block, a table and a link, and ends with a sentence.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#input"), "show me markdown"),
		chromedp.Click(chromedp.CSS("#send")),
	); err != nil {
		t.Fatal(err)
	}
	webchattest.Wait(t, ctx, "the third answer", lastBot+`.startsWith("[Hermes simulator · turn 3]") && `+lastBot+`.endsWith("not a real agent.")`)
	const last = `[...document.querySelectorAll("#messages .msg.bot")].at(-1)`
	for _, selector := range []string{"ul li", "pre code", "table td", `a[href="https://github.com/NousResearch/hermes-agent"]`} {
		if !browserEval[bool](t, ctx, last+`.querySelector(`+strconv.Quote(selector)+`) !== null`) {
			t.Errorf("the answer to %q renders no %s: %s", "show me markdown", selector, browserEval[string](t, ctx, last+`.innerHTML`))
		}
	}
}

// The demo's state is its own: $HERALD_HOME/demo, not a real gateway's
// $HERALD_HOME/state.db.
func TestDemoKeepsItsStateApart(t *testing.T) {
	startDemo(t)
	home := os.Getenv("HERALD_HOME")
	if _, err := os.Stat(filepath.Join(home, "demo", "state.db")); err != nil {
		t.Errorf("the demo's state: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "state.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo wrote a real gateway's state.db: %v", err)
	}
}
