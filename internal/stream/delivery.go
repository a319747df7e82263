package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

// Delivery streams one answer into one chat. Events go in with Handle from
// the backend's goroutine; a worker goroutine of the Delivery does all the
// sending, one call at a time; Finish makes the final answer show and ends
// it. The worker runs only while calls are due: Handle or a timer starts it,
// and it ends when it has to wait, so an answer between two updates holds no
// goroutine (a gateway streams thousands at once).
type Delivery struct {
	ad          platform.Adapter
	statuser    platform.Statuser // nil where the status line goes into the text
	target      chat.Target
	gate        *Gate
	shape       shape
	opts        Options
	beforeShown func()
	refused     func()
	beforeFinal func([]string)
	sent        func([]string)
	ctx         context.Context

	mu        sync.Mutex
	text      strings.Builder // the answer so far, thinking included
	tools     []agent.ToolProgress
	finishing bool
	// wakeAt is the length of text at which Handle next starts the worker;
	// below it no update can be due before its timer fires.
	wakeAt  int
	running bool // the worker runs
	kicked  bool // something happened while it ran: it looks again

	timer   *time.Timer    // starts the worker when a call falls due
	stop    chan struct{}  // closed by Finish
	workers sync.WaitGroup // the worker, while it runs

	// Owned by the worker while it runs, then by Finish.
	mode    mode
	screen  screen
	draftID int64
	shown   bool
	kept    bool // answer text went, or is going, into a message the user keeps
	lastLen int  // visible characters at the last update
	// checkedRaw is the length of text, thinking included, when it was
	// last planned or shown, and checkedGrowth the visible growth since
	// the last update counted then: the base of step's cheap test.
	checkedRaw, checkedGrowth int
	typingAt                  time.Time
	statusShown               string    // the status line the Statuser shows
	statusAt                  time.Time // no status change before this
	retryAt                   time.Time // no update before this, after a failure
	fails                     int       // updates failed in a row
	sendFails                 int       // sends failed in a row
	out                       Outcome
}

// Start begins delivering an answer. It stops making calls when Finish is
// called or ctx ends; one of them must happen.
func Start(ctx context.Context, p Params) *Delivery {
	d := newDelivery(ctx, p)
	d.kick()
	return d
}

// Send delivers a text that is complete from the start (a notice, a
// command's answer, a message of the agent's own) as Finish does, with
// nothing shown before it: no typing indicator, no status.
func Send(ctx context.Context, p Params, text string) (Outcome, error) {
	return newDelivery(ctx, p).Finish(ctx, text)
}

// newDelivery is a delivery whose worker has not started.
func newDelivery(ctx context.Context, p Params) *Delivery {
	o := p.Options.withDefaults()
	gate := p.Gate
	if gate == nil {
		gate = &Gate{}
	}
	caps := p.Adapter.Caps(p.Target)
	if _, ok := p.Adapter.(platform.Drafter); !ok {
		caps.Draft = false // declared without the means to draft
	}
	statuser, _ := p.Adapter.(platform.Statuser)
	if !caps.Status {
		statuser = nil // not in this chat
	}
	d := &Delivery{
		ad:          p.Adapter,
		statuser:    statuser,
		target:      p.Target,
		gate:        gate,
		shape:       newShape(caps, o, statuser != nil),
		opts:        o,
		beforeShown: p.BeforeShown,
		refused:     p.Refused,
		beforeFinal: p.BeforeFinal,
		sent:        p.Sent,
		ctx:         ctx,
		stop:        make(chan struct{}),
		mode:        chooseMode(o, caps),
		draftID:     rand.Int64N(1<<62) + 1,
	}
	for _, id := range p.Resume {
		d.screen.sealed = append(d.screen.sealed, &message{id: id, unknown: true})
	}
	if len(p.Resume) > 0 {
		d.shown, d.kept = true, true // shown before the crash
	}
	d.timer = time.AfterFunc(time.Hour, d.kick)
	d.timer.Stop()
	return d
}

// Handle takes one event of the answer. It never waits for the network, so
// the backend's goroutine can call it for every event.
func (d *Delivery) Handle(ev agent.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.finishing {
		return
	}
	switch ev.Kind {
	case agent.EventDelta:
		d.text.WriteString(ev.Text)
		if d.text.Len() < d.wakeAt {
			return
		}
	case agent.EventTool:
		if ev.Tool == nil {
			return
		}
		d.trackTool(*ev.Tool)
	default:
		return
	}
	d.kickLocked()
}

// trackTool keeps the list of running tools, most recent last.
func (d *Delivery) trackTool(t agent.ToolProgress) {
	key := func(t agent.ToolProgress) string {
		if t.ToolCallID != "" {
			return t.ToolCallID
		}
		return t.Tool
	}
	k := key(t)
	for i, r := range d.tools {
		if key(r) == k {
			d.tools = append(d.tools[:i], d.tools[i+1:]...)
			break
		}
	}
	if toolRunning(t.Status) {
		if len(d.tools) == maxRunningTools {
			d.tools = append(d.tools[:0], d.tools[1:]...) // the oldest goes
		}
		d.tools = append(d.tools, t)
	}
}

// maxRunningTools is how many running tools a delivery remembers (our
// choice): the status line shows the latest, and when it ends the one
// before; an agent server that starts tools and never ends them cannot
// make the list grow.
const maxRunningTools = 8

// snapshot returns the answer so far and the status line of the tool that
// runs, if any.
func (d *Delivery) snapshot() (string, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	status := ""
	if n := len(d.tools); n > 0 {
		status = statusLine(d.tools[n-1])
	}
	return d.text.String(), status
}

// idle means: nothing to do until an event arrives.
const idle time.Duration = -1

// kick starts the worker, or has the running one look again.
func (d *Delivery) kick() {
	d.mu.Lock()
	d.kickLocked()
	d.mu.Unlock()
}

// kickLocked is kick for a caller holding d.mu.
func (d *Delivery) kickLocked() {
	switch {
	case d.finishing:
	case d.running:
		d.kicked = true
	default:
		d.running = true
		d.workers.Add(1)
		go d.work()
	}
}

// work is the worker: it makes the calls that are due, one at a time, then
// sets the timer for the next one and ends. It ends at once when the
// delivery's context does, and once Finish is called.
func (d *Delivery) work() {
	defer d.workers.Done()
	for {
		wait := idle
		select {
		case <-d.stop:
		case <-d.ctx.Done():
		default:
			wait = d.step(time.Now())
		}
		if wait == 0 {
			continue
		}
		d.mu.Lock()
		if d.kicked && !d.finishing && d.ctx.Err() == nil {
			d.kicked = false
			d.mu.Unlock()
			continue
		}
		if wait > 0 && !d.finishing {
			d.timer.Reset(wait)
		}
		d.running, d.kicked = false, false
		d.mu.Unlock()
		return
	}
}

// step makes at most one call that is due now, and returns 0 if it made
// one, else how long until the next may be due (idle: when an event comes).
func (d *Delivery) step(now time.Time) time.Duration {
	next := idle
	later := func(at time.Time) {
		w := max(at.Sub(now), time.Millisecond)
		if next == idle || w < next {
			next = w
		}
	}
	if d.shape.caps.Typing && !d.shown {
		if !now.Before(d.typingAt) {
			if d.typing() {
				return 0
			}
			if d.finishingNow() {
				return idle
			}
		}
		later(d.typingAt)
	}
	if d.statuser != nil {
		if _, status := d.snapshot(); status != d.statusShown {
			if !now.Before(d.statusAt) {
				if d.showStatus(status) {
					return 0
				}
				if d.finishingNow() {
					return idle
				}
			}
			later(d.statusAt)
		}
	}
	if d.mode == modeOff {
		d.setWakeAt(math.MaxInt) // the typing timer alone has work
		return next
	}
	text, status := d.snapshot()
	// The cheap test first. The visible text grows by no more than the raw
	// text does (except when a held-back tag or code span resolves, which
	// at worst waits for the interval), so while the growth counted when
	// last planned plus the raw growth since stays below the threshold, no
	// update is due before the interval, and planning, which reads the
	// whole answer, can wait. Until then new text need not even start the
	// worker.
	grown := d.checkedGrowth + utf8.RuneCountInString(text[d.checkedRaw:])
	if due := dueAt(d.opts, now, d.gate.LastChange(), d.retryAt, grown, len(text)); due.After(now) && d.started() {
		if grown < d.opts.BufferThreshold {
			d.setWakeAt(len(text) + d.opts.BufferThreshold - grown) // a rune is at least a byte
		} else {
			d.setWakeAt(math.MaxInt) // only time can make it due now
		}
		later(due)
		return next
	}
	d.setWakeAt(0)
	v := format.StripThinkingPartial(text)
	growth := utf8.RuneCountInString(v) - d.lastLen
	d.checkedRaw, d.checkedGrowth = len(text), max(growth, 0)
	o := d.plan(v, status)
	if o == nil || (!d.shown && visibleChars(v) < minVisible && (v != "" || status == "")) {
		return next
	}
	s := d.intermediate()
	if due := d.dueAt(now, growth, s); due.After(now) {
		later(due)
		return next
	}
	if d.gate.take(d.ctx, d.stop) != nil {
		return idle // stopping
	}
	if at, ok := d.gate.reserve(time.Now(), s); !ok {
		d.gate.release()
		d.setWakeAt(math.MaxInt) // nothing can go before the timer
		later(at)
		return next
	}
	d.update(o, v, len(text)) // a rate limit closes the gate before the slot is free
	d.gate.release()
	return 0
}

// started tells whether the chat shows anything of the answer yet: until
// it does, the first text goes out as soon as there is something to show
// and a token for it.
func (d *Delivery) started() bool {
	return d.screen.active != nil || len(d.screen.sealed) > 0 || d.screen.drafted != ""
}

// intermediate is what an intermediate update asks of the budgets. The
// first text must leave a token for the final text; the others room for
// the next answer as well (see spend), so that a long answer spending its
// share does not hold the next one back.
func (d *Delivery) intermediate() spend {
	class := platform.Messages
	if d.mode == modeDraft {
		class = platform.Drafts
	}
	return spend{class: class, cost: 1, keep: 1, spare: d.started()}
}

// dueAt is when the next intermediate update may go: the first at once;
// the others after the streaming interval (or the threshold of new text),
// and spaced so that the budgets' spare tokens last the answer.
func (d *Delivery) dueAt(now time.Time, growth int, s spend) time.Time {
	if !d.started() {
		return d.retryAt
	}
	last := d.gate.LastChange()
	due := dueAt(d.opts, now, last, d.retryAt, growth, d.checkedRaw)
	if paced := last.Add(paceGap(d.gate.budgets(now, s), float64(s.cost))); paced.After(due) {
		due = paced
	}
	return due
}

// plan is the next intermediate call for the visible text v, with the
// steps that need no call (sealing a complete message) taken.
func (d *Delivery) plan(v, status string) *op {
	for {
		o := d.shape.next(d.mode, &d.screen, v, status)
		if o == nil || o.kind != opSeal {
			return o
		}
		o.msg.record(o.text, o.p, v)
		d.screen.sealed = append(d.screen.sealed, o.msg)
		d.screen.active = nil
	}
}

// typing refreshes the typing indicator when the chat's gate lets it now,
// leaving the budgets' tokens for the first text, the final text and the
// last marker, and reports whether it made the call; otherwise typingAt
// says when to try again.
func (d *Delivery) typing() bool {
	if d.gate.take(d.ctx, d.stop) != nil {
		return false // stopping
	}
	defer d.gate.release()
	s := spend{class: platform.Typing, cost: 1, keep: 2, spare: true} // the first and the final text
	if at, ok := d.gate.reserve(time.Now(), s); !ok {
		d.typingAt = at
		return false
	}
	var err error
	if d.statuser != nil {
		// The status is the indicator: refreshing it keeps a running
		// tool's line rather than replacing it.
		_, status := d.snapshot()
		if err = d.statuser.Status(d.ctx, d.target, status); err == nil {
			d.statusShown = status
		}
	} else {
		err = d.ad.Typing(d.ctx, d.target)
	}
	if err != nil {
		d.rateLimited(err)
	}
	every := d.opts.TypingInterval
	if d.shape.caps.TypingEvery > 0 {
		every = d.shape.caps.TypingEvery
	}
	d.typingAt = time.Now().Add(every)
	return true
}

// showStatus shows a changed status line through the Statuser when the
// chat's gate lets it now, on the same terms as the typing indicator, and
// reports whether it made the call; otherwise statusAt says when to try
// again. A status that fails for another reason than a rate limit is not
// tried again: it is a courtesy.
func (d *Delivery) showStatus(status string) bool {
	if d.gate.take(d.ctx, d.stop) != nil {
		return false // stopping
	}
	defer d.gate.release()
	s := spend{class: platform.Typing, cost: 1, keep: 2, spare: true}
	if at, ok := d.gate.reserve(time.Now(), s); !ok {
		d.statusAt = at
		return false
	}
	err := d.statuser.Status(d.ctx, d.target, status)
	if !d.rateLimited(err) {
		if err != nil {
			d.log().Debug("showing the status failed", "err", err)
		}
		d.statusShown = status
	}
	return true
}

// finishingNow tells whether Finish was called or the context ended.
func (d *Delivery) finishingNow() bool {
	select {
	case <-d.stop:
		return true
	case <-d.ctx.Done():
		return true
	default:
		return false
	}
}

// setWakeAt sets the text length at which Handle starts the worker.
func (d *Delivery) setWakeAt(n int) {
	d.mu.Lock()
	d.wakeAt = n
	d.mu.Unlock()
}

// update makes one intermediate call for the visible text v, out of raw
// bytes of text.
func (d *Delivery) update(o *op, v string, raw int) {
	var err error
	limited := false
	s := &d.screen
	switch o.kind {
	case opSend:
		var id string
		err = d.keep(d.ctx, "platform.send", v, func(ctx context.Context) (err error) {
			id, err = d.ad.Send(ctx, d.target, o.text)
			return err
		})
		if err == nil {
			d.out.Sends++
			d.sendFails = 0
			m := &message{id: id}
			m.record(o.text, o.p, v)
			if o.seal {
				s.sealed = append(s.sealed, m)
			} else {
				s.active = m
			}
			if d.sent != nil {
				d.sent(s.ids())
			}
		} else if limited = d.rateLimited(err); !limited && !errors.Is(err, platform.ErrUnavailable) {
			d.log().Warn("sending the answer failed", "err", err)
			if d.sendFails++; d.sendFails >= maxAttempts {
				d.mode = modeOff // leave it to Finish
			}
		}
	case opEdit:
		err = d.keep(d.ctx, "platform.edit", v, func(ctx context.Context) error { return d.ad.Edit(ctx, d.target, o.msg.id, o.text) })
		if err == nil {
			d.out.Edits++
			o.msg.record(o.text, o.p, v)
			if o.seal {
				s.sealed = append(s.sealed, o.msg)
				s.active = nil
			}
		} else if limited = d.rateLimited(err); !limited && !errors.Is(err, platform.ErrUnavailable) {
			// A platform that is down is tried again at the next update.
			d.log().Warn("editing the answer failed", "err", err)
			if o.msg.fails++; errors.Is(err, platform.ErrCannotEdit) || o.msg.fails >= maxAttempts {
				// Keep what it shows; the rest goes out as new messages.
				o.msg.dead = true
				s.sealed = append(s.sealed, o.msg)
				s.active = nil
			}
		}
	case opDraft:
		err = platformCall(d.ctx, "platform.draft", func(ctx context.Context) error {
			return d.ad.(platform.Drafter).Draft(ctx, d.target, d.draftID, o.text)
		})
		if err == nil {
			d.out.Drafts++
			s.drafted = o.text
		} else if limited = d.rateLimited(err); !limited {
			d.log().Warn("drafts failed, editing messages instead", "err", err)
			d.mode = modeOff
			if d.shape.caps.Edit {
				d.mode = modeEdit
			}
			return
		}
	}
	if err != nil {
		if !limited { // a rate limit has its own wait, in the gate
			d.fails++
			d.retryAt = time.Now().Add(backoff(d.opts.RetryDelay, d.fails))
		}
		return
	}
	d.fails = 0
	d.retryAt = time.Time{}
	d.lastLen, d.checkedRaw, d.checkedGrowth = utf8.RuneCountInString(v), raw, 0
	if v != "" { // a status line alone is not answer text
		d.shownNow()
	}
}

// rateLimited handles a rate-limit answer: the chat's gate stays closed for
// as long as the platform asked. It reports whether err was one.
func (d *Delivery) rateLimited(err error) bool {
	var rl *platform.RateLimitError
	if !errors.As(err, &rl) {
		return false
	}
	d.out.RateLimitWaits++
	d.gate.Block(time.Now().Add(max(rl.RetryAfter, d.opts.RetryDelay)))
	d.log().Info("rate limited", "retry_after", rl.RetryAfter)
	return true
}

// log is the delivery's logger. It is made when something is worth
// logging, which is rare, rather than held by every delivery.
func (d *Delivery) log() *slog.Logger {
	return d.opts.Logger.With("platform", d.ad.Name(), "chat", d.target.ChatID)
}

// shownNow notes that answer text reached the user.
func (d *Delivery) shownNow() {
	d.shown = true
	d.out.Shown = true
}

// keep makes call, the platform call named (see platformCall), which puts
// the text v into a message the user keeps: before the first such call
// that holds answer text, BeforeShown is called; when the platform refuses
// that call for its rate limit (so it showed nothing), Refused is, and
// BeforeShown comes again before the next one.
func (d *Delivery) keep(ctx context.Context, name, v string, call func(context.Context) error) error {
	first := !d.kept && v != ""
	if first {
		d.kept = true
		if d.beforeShown != nil {
			d.beforeShown()
		}
	}
	err := platformCall(ctx, name, call)
	var refused *platform.RateLimitError
	if first && errors.As(err, &refused) {
		d.kept = false
		if d.refused != nil {
			d.refused()
		}
	}
	return err
}

// tracerName names the tracer of the platform calls' spans.
const tracerName = "github.com/herald-chat/herald/internal/stream"

// platformCall makes one call to the platform, a span named name in the
// trace ctx carries (a turn's: see package gateway; none without one), so
// that a turn's trace shows each call its answer took. The span holds the
// error's type, never a text.
func platformCall(ctx context.Context, name string, call func(context.Context) error) error {
	ctx, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(tracerName).Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	err := call(ctx)
	if err != nil {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(attribute.String("error.type", fmt.Sprintf("%T", err)))
	}
	return err
}
