// Package webchattest starts a real headless browser for tests of the web
// chat page, here and in the end-to-end tests.
package webchattest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package puts the browser; CI
// installs the same package.
const ChromiumPath = "/usr/bin/chromium"

// Timeout bounds a whole browser test, so that a page that never gets
// there fails instead of hanging.
const Timeout = 60 * time.Second

// NewBrowser starts headless Chromium and returns a context for chromedp
// actions in a new tab. The browser stops when the test ends. Uncaught
// exceptions, console.error calls and Content-Security-Policy refusals fail
// the test: they are bugs of the page. Failed requests are only logged.
//
// Without Chromium the test fails (CI must really run it) unless it runs
// with -short, where it is skipped.
func NewBrowser(t testing.TB) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Fatalf("browser test: %s not found (%v). Install chromium to run it: apt-get update && apt-get install -y chromium", ChromiumPath, err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // containers run as root, where the sandbox fails
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1000, 760),
		// No UserDataDir: chromedp makes a temporary one and removes it
		// (with retries, as Chromium's helpers may still write to it).
	)
	timeout, cancelTimeout := context.WithTimeout(context.Background(), Timeout)
	alloc, cancelAlloc := chromedp.NewExecAllocator(timeout, opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)

	var watching sync.WaitGroup
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit
		cancelTimeout()
		watching.Wait()
	})

	// Subscribe before the browser starts so that nothing is missed.
	consoleCalls := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	entries := chromedp.Events(ctx, log.EntryAdded)
	if err := chromedp.Do(ctx); err != nil { // starts the browser and the tab
		t.Fatalf("browser test: starting %s: %v", ChromiumPath, err)
	}
	watching.Go(func() {
		for ev, err := range consoleCalls {
			if err != nil {
				return
			}
			switch ev.Type {
			case runtime.ConsoleAPICalledTypeError:
				t.Errorf("browser console.error: %s", args(ev.Args))
			case runtime.ConsoleAPICalledTypeWarning:
				t.Logf("browser console.warn: %s", args(ev.Args))
			}
		}
	})
	watching.Go(func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			t.Errorf("browser: uncaught exception: %s", exceptionText(ev.ExceptionDetails))
		}
	})
	watching.Go(func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			e := ev.Entry
			// Script errors and refusals by the Content-Security-Policy are
			// bugs of the page; failed requests may be what a test wants.
			if e.Level == log.EntryLevelError && (e.Source == log.EntrySourceSecurity || e.Source == log.EntrySourceJavascript) {
				t.Errorf("browser %s error: %s", e.Source, e.Text)
			} else if e.Level == log.EntryLevelError || e.Level == log.EntryLevelWarning {
				t.Logf("browser %s %s: %s %s", e.Source, e.Level, e.Text, e.URL)
			}
		}
	})
	return ctx
}

func args(list []*runtime.RemoteObject) string {
	var s string
	for i, a := range list {
		if i > 0 {
			s += " "
		}
		switch {
		case a.Description != "":
			s += a.Description
		case len(a.Value) > 0:
			s += string(a.Value)
		default:
			s += string(a.Type)
		}
	}
	return s
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "(no details)"
	}
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Text
}

// WaitTimeout bounds each Wait.
const WaitTimeout = 20 * time.Second

// Wait waits until the JavaScript expression is true in the page, and
// fails the test with the page's body if it is not within WaitTimeout. A
// poll that meets the page between two documents (Chromium reports that
// the JavaScript context it was given is gone) is tried again: right after
// a navigation that is a race of the browser's, not a fault of the page.
func Wait(t testing.TB, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingTimeout(time.Until(deadline)), chromedp.WithPollingInterval(10*time.Millisecond)))
		if err == nil {
			return
		}
		var cdpErr *cdproto.Error
		if errors.As(err, &cdpErr) && cdpErr.Message == contextGone && time.Now().Before(deadline) {
			continue
		}
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("waiting for %s (%s): %v\npage: %s", what, expr, err, html)
	}
}

// contextGone is Chromium's answer to an evaluation in a JavaScript
// context that a navigation has just replaced.
const contextGone = "Cannot find context with specified id"
