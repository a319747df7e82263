package webchat

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/bearer"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/httpserve"
	"github.com/herald-chat/herald/internal/platform"
)

// Name is the platform's name, in config keys and in chat.Source.Platform.
const Name = "webchat"

// Adapter is the web chat platform: its Handler serves the page and the API
// the page uses, and what the gateway sends goes to the pages that have the
// conversation open.
type Adapter struct {
	opts       Options
	transcript func(ctx context.Context, src chat.Source) ([]chat.Message, error)
	token      bearer.Token
	failures   *lockout
	streams    *httpserve.Slots
	log        *slog.Logger
	handler    http.Handler
	// epoch tells this process's cursors from an earlier one's.
	epoch string
	// keepalive is how often an idle event stream gets a comment, so that
	// proxies and the page's watchdog see it is alive.
	keepalive time.Duration

	ready chan struct{}
	done  chan struct{} // closed when Run ends

	mu      sync.Mutex
	started bool
	handle  platform.Handler // nil before Run and after it ends
	runCtx  context.Context
	seq     uint64 // counts changes, for cursors
	convs   map[string]*conversation
}

var _ platform.Adapter = (*Adapter)(nil)

// New returns a web chat adapter for the listener at d.HTTPAddr; d.History,
// if set, shows a reloaded page its conversation again, even after a
// restart. It fails without a token of at least 16 characters when the
// listener is not on a loopback address, so that the agent is never open
// to the network by accident.
func New(opts Options, d platform.Deps) (*Adapter, error) {
	if err := checkToken(opts, d.HTTPAddr); err != nil {
		return nil, err
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Adapter{
		opts:       opts,
		transcript: d.History,
		token:      bearer.New(opts.Token),
		failures:   newLockout(),
		streams:    httpserve.NewSlots(d.MaxEventStreams, d.MaxEventStreamsPerClient),
		log:        d.Logger.With("platform", Name),
		epoch:      rand.Text()[:8],
		keepalive:  15 * time.Second,
		ready:      make(chan struct{}),
		done:       make(chan struct{}),
		convs:      map[string]*conversation{},
	}
	a.handler = a.routes()
	return a, nil
}

// Name returns "webchat".
func (a *Adapter) Name() string { return Name }

// Caps declares a fast, edit-friendly platform with no rate limit: the
// page re-renders each edit, and nothing stands between Herald and it.
func (a *Adapter) Caps(chat.Target) platform.Caps {
	return platform.Caps{
		MaxLength: 64000,
		Count:     format.Runes,
		Edit:      true,
		Typing:    true,
		Cursor:    true,
		Format:    format.HTML,
	}
}

// Ready is closed once Run has the handler, so posted messages are taken.
func (a *Adapter) Ready() <-chan struct{} { return a.ready }

// Run takes posted messages, handing each to h, until ctx ends. Then the
// API answers 503 and the event streams end. It can run only once.
func (a *Adapter) Run(ctx context.Context, h platform.Handler) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return errors.New("webchat: Run called twice")
	}
	a.started, a.handle, a.runCtx = true, h, ctx
	a.mu.Unlock()
	close(a.ready)
	a.log.Info("web chat ready")

	<-ctx.Done()
	a.mu.Lock()
	a.handle = nil
	a.mu.Unlock()
	close(a.done)
	a.log.Info("web chat stopped")
	return nil
}

// running returns the handler and Run's context, or a nil handler when the
// adapter is not running.
func (a *Adapter) running() (platform.Handler, context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.handle, a.runCtx
}

// Send shows a new bot message in the conversation t.ChatID.
func (a *Adapter) Send(ctx context.Context, t chat.Target, text string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	render := new(format.GrowingHTML)
	html := render.Render(text) // outside the lock: it is the slow part
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.conversation(t.ChatID, true)
	it := &item{id: rand.Text(), replyTo: t.ReplyTo, text: text, html: html, render: render, seq: a.tick(c)}
	c.add(it)
	a.publish(c, messageEvent("message", it, a.cursor(it.seq)))
	return it.id, nil
}

// Edit replaces a bot message's text. A message this process did not send,
// or no longer keeps, cannot be edited: the gateway then sends a new one.
func (a *Adapter) Edit(ctx context.Context, t chat.Target, id, text string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	it := a.botMessage(t.ChatID, id)
	if it == nil {
		return platform.ErrCannotEdit
	}
	// Rendered outside the lock: it is the slow part. Only the gateway's
	// one delivery of this message edits it, so edits do not race.
	html := it.render.Render(text)
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.conversation(t.ChatID, false)
	if c == nil || c.find(id) != it || it.deleted {
		return platform.ErrCannotEdit
	}
	it.text, it.html, it.seq = text, html, a.tick(c)
	a.publish(c, messageEvent("edit", it, a.cursor(it.seq)))
	return nil
}

// Delete removes a bot message. Deleting one that is gone already is done.
func (a *Adapter) Delete(ctx context.Context, t chat.Target, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.conversation(t.ChatID, false)
	if c == nil {
		return nil
	}
	it := c.find(id)
	if it == nil || it.user || it.deleted {
		return nil
	}
	// Keep a tombstone so that a page reconnecting later learns of it.
	it.text, it.html, it.deleted, it.seq = "", "", true, a.tick(c)
	a.publish(c, deleteEvent(it, a.cursor(it.seq)))
	return nil
}

// botMessage returns the bot message id of conversation conv, or nil if
// there is none this process keeps.
func (a *Adapter) botMessage(conv, id string) *item {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.conversation(conv, false)
	if c == nil {
		return nil
	}
	if it := c.find(id); it != nil && !it.user && !it.deleted {
		return it
	}
	return nil
}

// Typing shows the typing indicator on the pages that have the
// conversation open; the page hides it after a few seconds.
func (a *Adapter) Typing(ctx context.Context, t chat.Target) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.conversation(t.ChatID, false); c != nil {
		a.publish(c, event{name: "typing", data: []byte("{}")})
	}
	return nil
}

// source is where a page's messages come from: a DM between the bot and
// whoever has the conversation open.
func source(conv, messageID string) chat.Source {
	return chat.Source{
		Platform:  Name,
		ChatID:    conv,
		ChatType:  chat.DM,
		UserID:    Name + ":" + conv,
		UserName:  "web user",
		MessageID: messageID,
	}
}
