package stream

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

// The planning of a delivery: pure functions of what the chat shows, the
// text so far and the time, so that they are tested without a platform or
// a clock.

// mode is how intermediate text is shown.
type mode int

const (
	modeOff   mode = iota // not at all: the final answer only
	modeEdit              // a message edited as text arrives
	modeDraft             // drafts (platform.Drafter), then one final send
)

// chooseMode picks how intermediate text is shown, from the options and
// what the platform can do in the chat: drafts where the chat has them and
// the transport allows them, else edits where messages can be edited.
func chooseMode(o Options, caps platform.Caps) mode {
	if !o.Enabled || o.Transport == "off" {
		return modeOff
	}
	if caps.Draft && o.Transport != "edit" {
		return modeDraft
	}
	if caps.Edit {
		return modeEdit
	}
	return modeOff
}

// message is one sent message of the answer.
type message struct {
	id    string
	shown string // what the chat shows in it
	from  int    // where its part of the text starts
	upTo  string // the text up to the end of its part
	fence string // the code fence open at the end of its part, if any
	fails int    // edits failed in a row
	dead  bool   // it cannot be edited any more
	// unknown: what it shows is not known (resumed after a crash); the
	// final text is edited into it.
	unknown bool
}

// record notes what a message now shows: piece p of the text v.
func (m *message) record(text string, p piece, v string) {
	m.shown = text
	m.from = p.start
	m.upTo = v[:p.end]
	m.fence = p.fence
	m.fails = 0
}

// piece is one message's share of a text laid out for sending.
type piece struct {
	text  string
	start int    // where its part starts in the text
	end   int    // and ends
	fence string // code fence open at its end, for the next message
}

// screen is what the chat shows of the answer while it streams.
type screen struct {
	sealed  []*message // complete messages, never edited again while streaming
	active  *message   // the message being written, if any
	drafted string     // the draft shown, in draft mode
}

// ids are the messages showing the answer, in order; nil for none.
func (s *screen) ids() []string {
	var ids []string
	for _, m := range s.sealed {
		ids = append(ids, m.id)
	}
	if s.active != nil {
		ids = append(ids, s.active.id)
	}
	return ids
}

// opKind tells the calls apart.
type opKind int

const (
	opSend opKind = iota
	opEdit
	opDelete
	opDraft
	opSeal // no call: the active message is complete as it is
)

// op is one step to take.
type op struct {
	kind opKind
	msg  *message // edited, deleted or sealed
	text string
	p    piece
	seal bool // the message is complete once the call succeeds
}

// shape is what planning knows of the chat: its platform's limits, the
// cursor intermediate text ends with there, and whether the tool status
// line goes into the text.
type shape struct {
	caps        platform.Caps
	cursor      string // empty where the platform shows none
	statusApart bool   // the status is shown apart (platform.Statuser), or nowhere
}

// newShape is the shape of a chat with caps, for the options o; statusApart
// says the adapter shows the status line itself.
func newShape(caps platform.Caps, o Options, statusApart bool) shape {
	s := shape{caps: caps, statusApart: statusApart || caps.Appends}
	if o.NoTyping {
		s.caps.Typing = false
	}
	if caps.Cursor && !caps.Appends {
		s.cursor = o.Cursor
	}
	return s
}

// next returns the next intermediate step for the visible text v and the
// tool status line, or nil when the chat already shows them. It changes
// nothing: the caller applies the step once it is made.
func (sh shape) next(m mode, s *screen, v, status string) *op {
	pieces := sh.layout(v, s.sealed, sh.streamLimit())
	if len(pieces) == 0 {
		return sh.nextStatus(m, s, status)
	}
	if m == modeDraft {
		last := pieces[len(pieces)-1]
		if text := sh.decorate(last.text, status); text != s.drafted {
			return &op{kind: opDraft, text: text, p: last}
		}
		return nil
	}
	p := pieces[0]
	seal := len(pieces) > 1 // the text goes on in another message
	text := p.text
	if !seal {
		text = sh.decorate(text, status)
	}
	switch {
	case s.active == nil:
		return &op{kind: opSend, text: text, p: p, seal: seal}
	case s.active.shown != text && sh.caps.Appends && !strings.HasPrefix(text, s.active.shown):
		// A stream only grows: it ends with what it shows, a code block
		// left open closed, and the text goes on in the next one.
		a := s.active
		p := piece{text: a.shown, start: a.from, end: len(a.upTo), fence: a.fence}
		if a.fence == "" {
			return &op{kind: opSeal, msg: a, text: a.shown, p: p}
		}
		if !strings.HasSuffix(p.text, "\n") {
			p.text += "\n"
		}
		p.text += format.CloseFence(a.fence)
		return &op{kind: opEdit, msg: a, text: p.text, p: p, seal: true}
	case s.active.shown != text:
		return &op{kind: opEdit, msg: s.active, text: text, p: p, seal: seal}
	case seal: // already complete: the next message starts
		return &op{kind: opSeal, msg: s.active, text: text, p: p}
	}
	return nil
}

// nextStatus shows a running tool before any answer text exists: a message
// (or draft) holding only the status line, which the text then replaces.
func (sh shape) nextStatus(m mode, s *screen, status string) *op {
	if status == "" || len(s.sealed) > 0 || sh.statusApart {
		return nil
	}
	text := status + sh.cursor
	switch {
	case m == modeDraft && text != s.drafted:
		return &op{kind: opDraft, text: text}
	case m == modeDraft:
		return nil
	case s.active == nil:
		return &op{kind: opSend, text: text}
	case s.active.shown != text:
		return &op{kind: opEdit, msg: s.active, text: text}
	}
	return nil
}

// layout cuts the text v that follows the sealed messages into pieces of
// at most limit units, reopening a code fence the last sealed message
// closed. It returns nothing when v does not continue what they show.
func (sh shape) layout(v string, sealed []*message, limit int) []piece {
	// The answer starts at its first visible character; after a sealed
	// message, where the split would have resumed (keeping indentation).
	off, reopen := len(v)-len(strings.TrimLeft(v, " \t\r\n")), ""
	if n := len(sealed); n > 0 {
		last := sealed[n-1]
		if !strings.HasPrefix(v, last.upTo) {
			return nil
		}
		off, reopen = format.ResumeAfter(v, len(last.upTo)), last.fence
	}
	src := v[off:]
	if strings.Trim(src, " \t\r\n") == "" {
		return nil
	}
	prefix := ""
	if reopen != "" {
		prefix = reopen + "\n"
	}
	chunks := format.SplitChunks(prefix+src, limit, sh.caps.Count)
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
func (sh shape) streamLimit() int {
	limit := sh.caps.MaxLength
	switch {
	case limit <= 0:
		return limit
	case sh.caps.Appends:
		// Nothing decorates a stream, but one cut where it shows may
		// have to close a code block.
		return max(limit-appendRoom, limit/2, 1)
	case sh.cursor == "" && sh.statusApart:
		return limit // nothing decorates the text
	}
	units := 1
	switch sh.caps.Count {
	case format.Bytes:
		units = utf8.UTFMax
	case format.UTF16:
		units = 2
	}
	room := format.Length(sh.cursor+"\n\n", sh.caps.Count) + statusRunes*units
	return max(limit-room, limit/2, 1)
}

// decorate adds the tool status line and the cursor to intermediate text,
// leaving out what would not fit the platform's limit.
func (sh shape) decorate(text, status string) string {
	full := text
	if status != "" && !sh.statusApart {
		full += "\n\n" + status
	}
	full += sh.cursor
	if sh.caps.MaxLength > 0 && format.Length(full, sh.caps.Count) > sh.caps.MaxLength {
		return text
	}
	return full
}

// appendRoom is what a stream keeps free for the line that closes a code
// block when it has to end where it shows (our choice: a closing line of
// up to 15 characters, indentation included).
const appendRoom = 16

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

// planRate is how many bytes of answer make one second between
// intermediate updates (our choice). Planning an update reads the whole
// answer a few times, at about a gigabyte a second, so spacing updates by
// size/planRate keeps planning to about 1% of a core however long an
// answer grows or however slowly it trickles in, where updates every
// BufferThreshold characters would cost time quadratic in its size. An
// ordinary answer is not held back: 100 KB gives 10 ms.
const planRate = 10 << 20

// dueAt is when the next intermediate update may be made, the text having
// grown by grown characters since the last one and being size bytes long:
// once the edit interval has passed since the chat last changed, at once
// if it grew by the threshold, never sooner than size/planRate after the
// last change, and never before a retry is due.
func dueAt(o Options, now, lastChange, retryAt time.Time, grown, size int) time.Time {
	due := lastChange.Add(o.EditInterval)
	if grown >= o.BufferThreshold {
		due = now
	}
	if spaced := lastChange.Add(time.Duration(size) * time.Second / planRate); spaced.After(due) {
		due = spaced
	}
	if retryAt.After(due) {
		due = retryAt
	}
	return due
}

// spare is a budget as a delivery may spend it: its level and room less
// the tokens the delivery keeps there, and its refill rate a second.
type spare struct {
	level, room, rate float64
}

// paceGap is how long after the chat's last change the next intermediate
// update may come so that the budgets' spare tokens are spread over the
// answer: no wait while a budget is full, a whole refill period once down
// to its last spare token, in proportion between the two, and the time to
// refill when none is spare. The longest of the budgets' gaps counts.
func paceGap(budgets []spare, cost float64) time.Duration {
	var gap float64 // seconds
	for _, b := range budgets {
		if b.rate <= 0 {
			continue
		}
		period := 1 / b.rate
		var g float64
		switch {
		case b.level < cost:
			g = (cost - b.level) / b.rate
		case b.room <= cost:
			g = period
		default:
			g = period * (1 - (b.level-cost)/(b.room-cost))
		}
		gap = max(gap, g)
	}
	return time.Duration(gap * float64(time.Second))
}

// backoff is the wait before retrying after n failures in a row.
func backoff(first time.Duration, n int) time.Duration {
	d := first
	for i := 1; i < n && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}
