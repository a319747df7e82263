package webchat

import (
	"crypto/rand"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
)

// Memory bounds: the adapter keeps recent messages so that pages can
// reconnect and reload mid-answer, not a full transcript (the store has it).
const (
	maxItems         = 200  // per conversation; the oldest go first
	maxConversations = 1000 // the least recently used without a page go first
	subscriberBuffer = 64   // events a page may fall behind before it is cut off
)

// conversation is what this process knows of one conversation. Every field
// is guarded by Adapter.mu.
type conversation struct {
	// items are the messages posted and sent in this process, oldest first.
	items []*item
	// start is the index of the first item after the last /new: earlier
	// items belong to the previous session, not to the page's view.
	start   int
	subs    map[*subscriber]struct{}
	touched time.Time
}

// item is one message: a post from the page or a bot message.
type item struct {
	id      string
	user    bool
	eventID string // posts: the idempotency id, to keep a retry once
	replyTo string // bot messages: the id of the post they answer
	text    string
	html    string
	render  *format.GrowingHTML // bot messages: renders each edit's new blocks only
	deleted bool
	seq     uint64 // the last change
}

// subscriber is one open event stream. Its channel is closed when it falls
// behind, so that it reconnects and catches up from the kept state.
type subscriber struct {
	ch chan event
}

// event is one event-stream event, encoded once for every subscriber.
type event struct {
	name   string
	cursor string // the "id:" field; empty for typing
	data   []byte
}

func messageEvent(name string, it *item, cursor string) event {
	data, _ := json.Marshal(struct {
		ID   string `json:"id"`
		Text string `json:"text"`
		HTML string `json:"html"`
	}{it.id, it.text, it.html})
	return event{name: name, cursor: cursor, data: data}
}

func deleteEvent(it *item, cursor string) event {
	data, _ := json.Marshal(struct {
		ID string `json:"id"`
	}{it.id})
	return event{name: "delete", cursor: cursor, data: data}
}

// conversation returns the state of conversation id, making it when create
// is set. The caller holds a.mu.
func (a *Adapter) conversation(id string, create bool) *conversation {
	c := a.convs[id]
	if c == nil && create {
		if len(a.convs) >= maxConversations {
			a.evict()
		}
		c = &conversation{subs: map[*subscriber]struct{}{}}
		a.convs[id] = c
	}
	if c != nil {
		c.touched = time.Now()
	}
	return c
}

// evict forgets the least recently used conversation that no page has open.
func (a *Adapter) evict() {
	var oldest string
	var at time.Time
	for id, c := range a.convs {
		if len(c.subs) == 0 && (oldest == "" || c.touched.Before(at)) {
			oldest, at = id, c.touched
		}
	}
	if oldest != "" {
		delete(a.convs, oldest)
	}
}

// tick counts one change. The caller holds a.mu.
func (a *Adapter) tick(c *conversation) uint64 {
	a.seq++
	c.touched = time.Now()
	return a.seq
}

// cursor names the state after change seq of this process.
func (a *Adapter) cursor(seq uint64) string {
	return a.epoch + "." + strconv.FormatUint(seq, 10)
}

// parseCursor returns the change a cursor names, or 0 (everything) for a
// cursor of an earlier process or none at all. The caller holds a.mu.
func (a *Adapter) parseCursor(s string) uint64 {
	rest, ok := strings.CutPrefix(s, a.epoch+".")
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || n > a.seq {
		return 0
	}
	return n
}

// add appends an item, dropping the oldest beyond maxItems.
func (c *conversation) add(it *item) {
	c.items = append(c.items, it)
	if n := len(c.items) - maxItems; n > 0 {
		c.items = slices.Delete(c.items, 0, n)
		c.start = max(0, c.start-n)
	}
}

// answersKeptPost reports whether bot message it answers a post this
// process keeps. One that does not answers a turn from before a restart
// (a resumed answer, a restart notice). The caller holds a.mu.
func (c *conversation) answersKeptPost(it *item) bool {
	p := c.find(it.replyTo)
	return p != nil && p.user
}

func (c *conversation) find(id string) *item {
	for _, it := range c.items {
		if it.id == id {
			return it
		}
	}
	return nil
}

// publish hands ev to every subscriber without ever waiting: one that has
// no room is cut off. The caller holds a.mu.
func (a *Adapter) publish(c *conversation, ev event) {
	for s := range c.subs {
		select {
		case s.ch <- ev:
		default:
			close(s.ch)
			delete(c.subs, s)
			a.log.Debug("an event stream fell behind; cut off so that it reconnects")
		}
	}
}

// subscribe opens a stream on conversation conv. It returns the events that
// bring a page at cursor up to date (without one, every bot message of the
// current session), or ok false when the adapter is not running.
func (a *Adapter) subscribe(conv, cursor string) (s *subscriber, replay []event, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.handle == nil {
		return nil, nil, false
	}
	after := a.parseCursor(cursor)
	c := a.conversation(conv, true)
	// Replayed events carry the current cursor: after them the page is up
	// to date, whatever order they come in.
	now := a.cursor(a.seq)
	items := c.items
	if after == 0 {
		items = c.items[c.start:]
	}
	for _, it := range items {
		switch {
		case it.user || it.seq <= after:
		case it.deleted:
			if after > 0 {
				replay = append(replay, deleteEvent(it, now))
			}
		default:
			replay = append(replay, messageEvent("message", it, now))
		}
	}
	s = &subscriber{ch: make(chan event, subscriberBuffer)}
	c.subs[s] = struct{}{}
	return s, replay, true
}

func (a *Adapter) unsubscribe(conv string, s *subscriber) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.convs[conv]; c != nil {
		delete(c.subs, s) // closed already if publish cut it off
	}
}

// remember keeps a post before the gateway sees it, so that the answer,
// which may come before the handler returns, follows it. A retry of a post
// kept already returns that one and added false.
func (a *Adapter) remember(conv, eventID, text string) (it *item, added bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.conversation(conv, true)
	for _, it := range c.items {
		if it.user && it.eventID == eventID {
			return it, false
		}
	}
	it = &item{id: rand.Text(), user: true, eventID: eventID, text: text, seq: a.tick(c)}
	c.add(it)
	return it, true
}

// taken records that the gateway journalled a post. After /new the page
// starts empty, so a reload must not bring back the earlier session.
func (a *Adapter) taken(conv string, it *item) {
	if !isNewSession(it.text) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.convs[conv]; c != nil {
		if i := slices.Index(c.items, it); i >= 0 {
			c.start = i + 1
		}
	}
}

// forget drops a post the gateway did not take.
func (a *Adapter) forget(conv string, it *item) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.convs[conv]; c != nil {
		if i := slices.Index(c.items, it); i >= 0 {
			c.items = slices.Delete(c.items, i, i+1)
			if i < c.start {
				c.start--
			}
		}
	}
}

// isNewSession reports whether a post is the gateway's /new or /reset.
func isNewSession(text string) bool {
	cmd, _ := chat.Command(text)
	return cmd == "new" || cmd == "reset"
}

// unsaved returns the items the transcript msgs does not hold yet. The
// gateway saves a turn (the post and its answer) once the answer is
// complete, so a page reloaded mid-answer would otherwise lose the
// question and the partial answer. The transcript's last question is found
// among the posts; what follows its answer is unsaved. The caller holds a.mu.
func (c *conversation) unsaved(msgs []chat.Message) []*item {
	from := c.start
	if last := lastQuestion(msgs); last != "" {
		for i := len(c.items) - 1; i >= c.start; i-- {
			if it := c.items[i]; it.user && it.text == last {
				from = i + 1
				for from < len(c.items) && !c.items[from].user {
					from++ // its answer, which the transcript holds
				}
				break
			}
		}
	}
	var out []*item
	for _, it := range c.items[from:] {
		if !it.deleted {
			out = append(out, it)
		}
	}
	return out
}

func lastQuestion(msgs []chat.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == chat.User {
			return msgs[i].Content
		}
	}
	return ""
}
