// Package stream delivers one agent answer into one chat while it is being
// written: it sends a first message and edits it as text arrives (or shows
// drafts), paced to the platform's limits, splits long answers over several
// messages, and always ends with exactly one complete final answer.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

// Options configures streaming. The first five fields mirror
// config.Streaming, so the gateway copies them over; the rest have defaults
// and exist mostly so tests can run fast.
type Options struct {
	// Enabled turns intermediate updates on; off, only the final answer is sent.
	Enabled bool
	// Transport is auto, draft, edit or off. Auto uses drafts in direct
	// chats of platforms that have them, else edits.
	Transport string
	// EditInterval is the least time between two updates of the answer
	// (default 0.8 s), unless the text grew by BufferThreshold meanwhile.
	EditInterval time.Duration
	// BufferThreshold is how many characters of new text justify an update
	// before EditInterval has passed (default 24).
	BufferThreshold int
	// Cursor ends intermediate updates on platforms whose Caps allow it,
	// showing the answer is still being written; empty means none.
	Cursor string
	// TypingInterval is how often the typing indicator is refreshed while
	// nothing is shown yet (default 4 s).
	TypingInterval time.Duration
	// RetryDelay is the first wait before retrying a failed call; it doubles
	// with each failure (default 0.5 s).
	RetryDelay time.Duration
	// Logger receives failures worth knowing about; nil discards them.
	Logger *slog.Logger
}

// Defaults for the Options left zero.
const (
	DefaultEditInterval    = 800 * time.Millisecond
	DefaultBufferThreshold = 24
	DefaultTypingInterval  = 4 * time.Second
	DefaultRetryDelay      = 500 * time.Millisecond
)

const (
	maxAttempts   = 3  // tries of one call before giving up on it
	minVisible    = 4  // non-space characters before the first message
	statusRunes   = 64 // longest tool status line
	maxRetryDelay = 30 * time.Second
)

// Params is what one delivery needs.
type Params struct {
	// Adapter is the platform the chat is on.
	Adapter platform.Adapter
	// Target is where the answer goes.
	Target platform.Target
	// DM tells that the chat is a direct chat, where drafts can be used.
	DM bool
	// Gate is the chat's gate, shared with every other delivery to the same
	// chat (see Gates); nil gives the delivery a gate of its own.
	Gate    *Gate
	Options Options
	// OnFirstShown, if set, is called once, as soon as some answer text is
	// visible to the user, so the gateway can record that the answer was
	// shown. It is called from the delivery's worker (or from Finish's
	// caller when nothing was shown before) and must not block.
	OnFirstShown func()
}

// Outcome tells how a delivery went, for the journal and metrics.
type Outcome struct {
	// MessageIDs are the messages holding the final answer, in order.
	MessageIDs []string
	// Shown is true once any answer text reached the user.
	Shown bool
	// Sends, Edits, Deletes and Drafts count the calls that succeeded.
	Sends, Edits, Deletes, Drafts int
	// RateLimitWaits counts the rate-limit answers the platform gave.
	RateLimitWaits int
}

// ErrNotDelivered reports that the final answer, or part of it, could not
// be delivered; Finish wraps the last error with it.
var ErrNotDelivered = errors.New("stream: final answer not delivered")

// mode is how intermediate text is shown.
type mode int

const (
	modeOff   mode = iota // not at all: the final answer only
	modeEdit              // a message edited as text arrives
	modeDraft             // drafts (Drafter), then one final send
)

// message is one sent message of the answer.
type message struct {
	id    string
	shown string // what the chat shows in it
	from  int    // where its part of the text starts
	upTo  string // the text up to the end of its part
	fence string // the code fence open at the end of its part, if any
	fails int    // edits failed in a row
	dead  bool   // it cannot be edited any more
}

// piece is one message's share of a text laid out for sending.
type piece struct {
	text  string
	start int    // where its part starts in the text
	end   int    // and ends
	fence string // code fence open at its end, for the next message
}

// Delivery streams one answer into one chat. Events go in with Handle from
// the backend's goroutine; a worker goroutine of the Delivery does all the
// sending, one call at a time; Finish makes the final answer show and ends
// it. The worker runs only while calls are due: Handle or a timer starts it,
// and it ends when it has to wait, so an answer between two updates holds no
// goroutine (a gateway streams thousands at once).
type Delivery struct {
	ad           platform.Adapter
	target       platform.Target
	gate         *Gate
	caps         platform.Caps
	opts         Options
	baseLog      *slog.Logger // see log
	onFirstShown func()
	ctx          context.Context

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
	sealed  []*message // complete messages, never edited again while streaming
	active  *message   // the message being written, if any
	draftID int64
	drafted string
	shown   bool
	lastLen int // visible characters at the last update
	// checkedRaw is the length of text, thinking included, when it was
	// last planned or shown, and checkedGrowth the visible growth since
	// the last update counted then: the base of step's cheap test.
	checkedRaw, checkedGrowth int
	typingAt                  time.Time
	retryAt                   time.Time // no update before this, after a failure
	fails                     int       // updates failed in a row
	sendFails                 int       // sends failed in a row
	out                       Outcome
}

// Start begins delivering an answer. It stops making calls when Finish is
// called or ctx ends; one of them must happen.
func Start(ctx context.Context, p Params) *Delivery {
	o := p.Options
	if o.EditInterval <= 0 {
		o.EditInterval = DefaultEditInterval
	}
	if o.BufferThreshold <= 0 {
		o.BufferThreshold = DefaultBufferThreshold
	}
	if o.TypingInterval <= 0 {
		o.TypingInterval = DefaultTypingInterval
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	gate := p.Gate
	if gate == nil {
		gate = &Gate{}
	}
	d := &Delivery{
		ad:           p.Adapter,
		target:       p.Target,
		gate:         gate,
		caps:         p.Adapter.Caps(),
		opts:         o,
		baseLog:      log,
		onFirstShown: p.OnFirstShown,
		ctx:          ctx,
		stop:         make(chan struct{}),
		draftID:      rand.Int64N(1<<62) + 1,
	}
	d.mode = d.chooseMode(p.DM)
	d.timer = time.AfterFunc(time.Hour, d.kick)
	d.timer.Stop()
	d.kick()
	return d
}

// chooseMode picks how intermediate text is shown, from the options and
// what the platform can do.
func (d *Delivery) chooseMode(dm bool) mode {
	if !d.opts.Enabled || d.opts.Transport == "off" {
		return modeOff
	}
	_, drafter := d.ad.(platform.Drafter)
	edit := modeOff
	if d.caps.Edit {
		edit = modeEdit
	}
	switch d.opts.Transport {
	case "draft":
		if drafter {
			return modeDraft
		}
	case "edit":
	default: // auto
		if drafter && d.caps.Draft && dm {
			return modeDraft
		}
	}
	return edit
}

// Handle takes one event of the answer. It never waits for the network, so
// the backend's goroutine can call it for every event.
func (d *Delivery) Handle(ev agent.Event) {
	d.mu.Lock()
	if d.finishing {
		d.mu.Unlock()
		return
	}
	switch ev.Kind {
	case agent.EventDelta:
		d.text.WriteString(ev.Text)
		if d.text.Len() < d.wakeAt {
			d.mu.Unlock()
			return
		}
	case agent.EventTool:
		if ev.Tool == nil {
			d.mu.Unlock()
			return
		}
		d.trackTool(*ev.Tool)
	default:
		d.mu.Unlock()
		return
	}
	d.kickLocked()
	d.mu.Unlock()
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
		d.tools = append(d.tools, t)
	}
}

// toolRunning tells whether a tool progress status means the tool is still
// at work.
func toolRunning(status string) bool {
	switch strings.ToLower(status) {
	case "completed", "complete", "done", "finished", "success", "succeeded",
		"failed", "error", "cancelled", "canceled":
		return false
	}
	return true
}

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

// statusLine shows a running tool: its emoji and label, else its name.
func statusLine(t agent.ToolProgress) string {
	label := strings.TrimSpace(t.Label)
	if label == "" {
		label = strings.TrimSpace(t.Tool)
	}
	if label == "" {
		label = "working"
	}
	if !strings.HasSuffix(label, "…") && !strings.HasSuffix(label, "...") {
		label += "…"
	}
	line := label
	if e := strings.TrimSpace(t.Emoji); e != "" {
		line = e + " " + label
	}
	line = strings.Join(strings.Fields(line), " ") // one line
	if utf8.RuneCountInString(line) > statusRunes {
		r := []rune(line)
		line = string(r[:statusRunes-1]) + "…"
	}
	return line
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
	if d.caps.Typing && !d.shown {
		if !now.Before(d.typingAt) {
			if d.gate.take(d.ctx, d.stop) != nil {
				return idle // stopping
			}
			if at, ok := d.gate.reserve(time.Now(), 0, false); !ok {
				d.gate.release()
				d.typingAt = at
			} else {
				if err := d.ad.Typing(d.ctx, d.target); err != nil {
					d.rateLimited(err)
				}
				d.gate.release()
				d.typingAt = time.Now().Add(d.opts.TypingInterval)
				return 0
			}
		}
		later(d.typingAt)
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
	if due := d.due(now, grown); due.After(now) {
		d.setWakeAt(len(text) + d.opts.BufferThreshold - grown) // a rune is at least a byte
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
	if due := d.due(now, growth); due.After(now) {
		later(due)
		return next
	}
	if d.gate.take(d.ctx, d.stop) != nil {
		return idle // stopping
	}
	if at, ok := d.gate.reserve(time.Now(), d.caps.EditInterval, true); !ok {
		d.gate.release()
		d.setWakeAt(math.MaxInt) // nothing can go before the timer
		later(at)
		return next
	}
	d.update(o, v, len(text)) // a rate limit closes the gate before the slot is free
	d.gate.release()
	return 0
}

// due is when the next update may be made, the text having grown by grown
// characters since the last one: once the edit interval has passed since
// the chat last changed, at once if it grew by the threshold, and never
// before a retry is due.
func (d *Delivery) due(now time.Time, grown int) time.Time {
	due := d.gate.LastChange().Add(d.opts.EditInterval)
	if grown >= d.opts.BufferThreshold {
		due = now
	}
	if d.retryAt.After(due) {
		due = d.retryAt
	}
	return due
}

// setWakeAt sets the text length at which Handle starts the worker.
func (d *Delivery) setWakeAt(n int) {
	d.mu.Lock()
	d.wakeAt = n
	d.mu.Unlock()
}

// visibleChars counts the characters of s that are not spaces.
func visibleChars(s string) int {
	n := 0
	for _, r := range s {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

// opKind tells the calls apart.
type opKind int

const (
	opSend opKind = iota
	opEdit
	opDelete
	opDraft
)

// op is one call to make.
type op struct {
	kind opKind
	msg  *message // edited or deleted
	text string
	p    piece
	seal bool // the message is complete once the call succeeds
}

// plan returns the next intermediate update to make for the visible text v,
// or nil when the chat already shows it.
func (d *Delivery) plan(v, status string) *op {
	pieces := d.layout(v, d.streamLimit())
	if len(pieces) == 0 {
		return d.planStatus(status)
	}
	if d.mode == modeDraft {
		last := pieces[len(pieces)-1]
		if text := d.decorate(last.text, status); text != d.drafted {
			return &op{kind: opDraft, text: text, p: last}
		}
		return nil
	}
	p := pieces[0]
	seal := len(pieces) > 1 // the text goes on in another message
	text := p.text
	if !seal {
		text = d.decorate(text, status)
	}
	switch {
	case d.active == nil:
		return &op{kind: opSend, text: text, p: p, seal: seal}
	case d.active.shown != text:
		return &op{kind: opEdit, msg: d.active, text: text, p: p, seal: seal}
	case seal: // already complete: start the next message
		d.active.record(text, p, v)
		d.sealed = append(d.sealed, d.active)
		d.active = nil
		return d.plan(v, status)
	}
	return nil
}

// planStatus shows a running tool before any answer text exists: a message
// (or draft) holding only the status line, which the text then replaces.
func (d *Delivery) planStatus(status string) *op {
	if status == "" || len(d.sealed) > 0 {
		return nil
	}
	text := status + d.cursor()
	switch {
	case d.mode == modeDraft && text != d.drafted:
		return &op{kind: opDraft, text: text}
	case d.mode == modeDraft:
		return nil
	case d.active == nil:
		return &op{kind: opSend, text: text}
	case d.active.shown != text:
		return &op{kind: opEdit, msg: d.active, text: text}
	}
	return nil
}

// record notes what a message now shows.
func (m *message) record(text string, p piece, v string) {
	m.shown = text
	m.from = p.start
	m.upTo = v[:p.end]
	m.fence = p.fence
	m.fails = 0
}

// layout cuts the text v that follows the sealed messages into pieces of
// at most limit units, reopening a code fence the last sealed message
// closed. It returns nothing when v does not continue what they show.
func (d *Delivery) layout(v string, limit int) []piece {
	base, reopen := 0, ""
	if n := len(d.sealed); n > 0 {
		last := d.sealed[n-1]
		if !strings.HasPrefix(v, last.upTo) {
			return nil
		}
		base, reopen = len(last.upTo), last.fence
	}
	rest := v[base:]
	off := base + len(rest) - len(strings.TrimLeft(rest, " \t\r\n"))
	src := v[off:]
	if strings.Trim(src, " \t\r\n") == "" {
		return nil
	}
	prefix := ""
	if reopen != "" {
		prefix = reopen + "\n"
	}
	chunks := format.SplitChunks(prefix+src, limit, d.caps.Count)
	pieces := make([]piece, 0, len(chunks))
	for _, ch := range chunks {
		fence := ch.Fence
		if fence == "" {
			fence = format.OpenFence(ch.Text)
		}
		pieces = append(pieces, piece{
			text:  ch.Text,
			start: off + max(ch.Start-len(prefix), 0),
			end:   off + max(ch.End-len(prefix), 0),
			fence: fence,
		})
	}
	return pieces
}

// streamLimit is the message length for intermediate text: the platform's
// limit less room for the status line and the cursor.
func (d *Delivery) streamLimit() int {
	limit := d.caps.MaxLength
	if limit <= 0 {
		return 0
	}
	units := 1
	switch d.caps.Count {
	case format.Bytes:
		units = utf8.UTFMax
	case format.UTF16:
		units = 2
	}
	room := format.Length(d.cursor()+"\n\n", d.caps.Count) + statusRunes*units
	return max(limit-room, limit/2, 1)
}

// cursor is the cursor intermediate text ends with, if the platform has one.
func (d *Delivery) cursor() string {
	if d.caps.Cursor {
		return d.opts.Cursor
	}
	return ""
}

// decorate adds the tool status line and the cursor to intermediate text,
// leaving out what would not fit the platform's limit.
func (d *Delivery) decorate(text, status string) string {
	full := text
	if status != "" {
		full += "\n\n" + status
	}
	full += d.cursor()
	if d.caps.MaxLength > 0 && format.Length(full, d.caps.Count) > d.caps.MaxLength {
		return text
	}
	return full
}

// update makes one intermediate call for the visible text v, out of raw
// bytes of text.
func (d *Delivery) update(o *op, v string, raw int) {
	var err error
	limited := false
	switch o.kind {
	case opSend:
		var id string
		id, err = d.ad.Send(d.ctx, d.target, o.text)
		if err == nil {
			d.out.Sends++
			d.sendFails = 0
			m := &message{id: id}
			m.record(o.text, o.p, v)
			if o.seal {
				d.sealed = append(d.sealed, m)
			} else {
				d.active = m
			}
		} else if limited = d.rateLimited(err); !limited {
			d.log().Warn("sending the answer failed", "err", err)
			if d.sendFails++; d.sendFails >= maxAttempts {
				d.mode = modeOff // leave it to Finish
			}
		}
	case opEdit:
		err = d.ad.Edit(d.ctx, d.target, o.msg.id, o.text)
		if err == nil {
			d.out.Edits++
			o.msg.record(o.text, o.p, v)
			if o.seal {
				d.sealed = append(d.sealed, o.msg)
				d.active = nil
			}
		} else if limited = d.rateLimited(err); !limited {
			d.log().Warn("editing the answer failed", "err", err)
			if o.msg.fails++; errors.Is(err, platform.ErrCannotEdit) || o.msg.fails >= maxAttempts {
				// Keep what it shows; the rest goes out as new messages.
				o.msg.dead = true
				d.sealed = append(d.sealed, o.msg)
				d.active = nil
			}
		}
	case opDraft:
		err = d.ad.(platform.Drafter).Draft(d.ctx, d.target, d.draftID, o.text)
		if err == nil {
			d.out.Drafts++
			d.drafted = o.text
		} else if limited = d.rateLimited(err); !limited {
			d.log().Warn("drafts failed, editing messages instead", "err", err)
			d.mode = modeOff
			if d.caps.Edit {
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
	return d.baseLog.With("platform", d.ad.Name(), "chat", d.target.ChatID)
}

// backoff is the wait before retrying after n failures in a row.
func backoff(first time.Duration, n int) time.Duration {
	d := first
	for i := 1; i < n && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

// shownNow notes that answer text reached the user.
func (d *Delivery) shownNow() {
	if d.shown {
		return
	}
	d.shown = true
	d.out.Shown = true
	if d.onFirstShown != nil {
		d.onFirstShown()
	}
}

// Finish makes the chat show exactly format.StripThinking(final), the
// backend's final text, split over as many messages as it needs: messages
// already sent are edited to their final part, one left over from a longer
// intermediate text is deleted, the rest is sent. The final state has no
// cursor and no status line. It stops the delivery's worker and must be
// called once. The error, wrapping ErrNotDelivered, says the final answer
// could not be delivered in full, so the turn should be recorded as failed.
func (d *Delivery) Finish(ctx context.Context, final string) (Outcome, error) {
	d.mu.Lock()
	if d.finishing {
		d.mu.Unlock()
		return Outcome{}, errors.New("stream: Finish called twice")
	}
	d.finishing = true
	d.mu.Unlock()
	close(d.stop)
	d.timer.Stop()
	d.workers.Wait()
	err := d.finish(ctx, format.StripThinking(final))
	out := d.out
	for _, m := range d.sealed {
		out.MessageIDs = append(out.MessageIDs, m.id)
	}
	return out, err
}

// finish lays the final text f out over the messages and sends, edits and
// deletes until the chat shows it.
func (d *Delivery) finish(ctx context.Context, f string) error {
	var targets []*message // messages to be edited to the final parts
	if n := len(d.sealed); n > 0 && !strings.HasPrefix(f, d.sealed[n-1].upTo) {
		// The final text differs from what the sealed messages show: lay
		// it out over all of them again.
		for _, m := range d.sealed {
			if m.dead {
				d.remove(ctx, m)
				continue
			}
			targets = append(targets, m)
		}
		d.sealed = nil
	}
	if d.active != nil {
		targets = append(targets, d.active)
		d.active = nil
	}
	attempts := 0
	for {
		pieces := d.layout(f, d.caps.MaxLength)
		i := 0
		for i < len(pieces) && i < len(targets) && targets[i].shown == pieces[i].text {
			i++
		}
		var o *op
		switch {
		case i < len(pieces) && i < len(targets):
			o = &op{kind: opEdit, msg: targets[i], text: pieces[i].text, p: pieces[i]}
		case i < len(pieces):
			o = &op{kind: opSend, text: pieces[i].text, p: pieces[i]}
		case i < len(targets):
			o = &op{kind: opDelete, msg: targets[i]}
		default:
			for j, m := range targets {
				m.record(pieces[j].text, pieces[j], f)
			}
			d.sealed = append(d.sealed, targets...)
			return nil
		}
		err := d.call(ctx, o)
		if err != nil && ctx.Err() != nil {
			d.sealed = append(d.sealed, targets...)
			return fmt.Errorf("%w: %w", ErrNotDelivered, ctx.Err())
		}
		switch {
		case err == nil:
			attempts = 0
			switch o.kind {
			case opSend:
				o.msg.record(o.text, o.p, f)
				targets = append(targets, o.msg)
			case opEdit:
				o.msg.record(o.text, o.p, f)
			case opDelete:
				targets = append(targets[:i], targets[i+1:]...)
			}
			continue
		case d.rateLimited(err):
			continue
		}
		attempts++
		d.log().Warn("delivering the final answer failed", "err", err, "attempt", attempts)
		switch {
		case o.kind == opDelete:
			// Left as it is: nothing of the answer is lost.
			targets = append(targets[:i], targets[i+1:]...)
			continue
		case o.kind == opEdit && (errors.Is(err, platform.ErrCannotEdit) || attempts >= maxAttempts):
			attempts = 0
			targets = d.giveUpEditing(ctx, targets, i, pieces, f)
			continue
		case attempts >= maxAttempts:
			d.sealed = append(d.sealed, targets...)
			return fmt.Errorf("%w: %w", ErrNotDelivered, err)
		}
		if err := sleep(ctx, backoff(d.opts.RetryDelay, attempts)); err != nil {
			d.sealed = append(d.sealed, targets...)
			return fmt.Errorf("%w: %w", ErrNotDelivered, err)
		}
	}
}

// giveUpEditing handles a target message that cannot be edited into its
// final part i: the messages before it are final and become sealed; it is
// kept as it is if what it shows is exactly the start of part i (the rest
// then goes out as new messages), else deleted if possible. It returns the
// targets left.
func (d *Delivery) giveUpEditing(ctx context.Context, targets []*message, i int, pieces []piece, f string) []*message {
	for j := range i {
		targets[j].record(pieces[j].text, pieces[j], f)
	}
	d.sealed = append(d.sealed, targets[:i]...)
	m := targets[i]
	m.dead = true
	if m.from == pieces[i].start && m.upTo != "" && strings.HasPrefix(f, m.upTo) && len(m.upTo) > m.from {
		d.sealed = append(d.sealed, m)
	} else {
		d.remove(ctx, m)
	}
	return targets[i+1:]
}

// remove deletes a message that is no longer part of the answer, if the
// platform lets it; a message that stays is left out of the outcome.
func (d *Delivery) remove(ctx context.Context, m *message) {
	for attempt := 1; ; attempt++ {
		err := d.call(ctx, &op{kind: opDelete, msg: m})
		if err != nil && ctx.Err() != nil {
			return
		}
		if err == nil || attempt >= maxAttempts {
			if err != nil {
				d.log().Warn("deleting a stale message failed", "err", err)
			}
			return
		}
		if !d.rateLimited(err) {
			if sleep(ctx, backoff(d.opts.RetryDelay, attempt)) != nil {
				return
			}
		}
	}
}

// call makes one call of the final delivery, when the chat's gate lets it,
// and records its success.
func (d *Delivery) call(ctx context.Context, o *op) error {
	return d.gate.Do(ctx, d.caps.EditInterval, func(ctx context.Context) error {
		return d.callNow(ctx, o)
	})
}

// callNow makes one call of the final delivery and records its success.
func (d *Delivery) callNow(ctx context.Context, o *op) error {
	switch o.kind {
	case opSend:
		id, err := d.ad.Send(ctx, d.target, o.text)
		if err != nil {
			return err
		}
		d.out.Sends++
		o.msg = &message{id: id, shown: o.text}
		d.shownNow()
	case opEdit:
		if err := d.ad.Edit(ctx, d.target, o.msg.id, o.text); err != nil {
			return err
		}
		d.out.Edits++
		o.msg.shown = o.text
		d.shownNow()
	case opDelete:
		if err := d.ad.Delete(ctx, d.target, o.msg.id); err != nil {
			return err
		}
		d.out.Deletes++
	}
	return nil
}
