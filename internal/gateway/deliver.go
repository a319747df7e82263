package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/stream"
	"github.com/herald-chat/herald/internal/texts"
)

// The targets a delivery may name, besides "<platform>" (its home chat)
// and "<platform>:<chat>[:<thread>]", as Hermes's cron and send_message
// name them; several may be given, separated by commas.
const (
	// TargetHome is the home chat of the first platform, by name, that has
	// one: where a report goes that names no platform (Hermes's cron falls
	// back to it the same way).
	TargetHome = "home"
	// TargetAll is every platform's home chat.
	TargetAll = "all"
	// originPrefix names the chat a session belongs to: origin:<session id>.
	originPrefix = "origin:"
)

// ErrUnknownTarget means a delivery's target names no chat Herald may
// deliver to; the error says why.
var ErrUnknownTarget = errors.New("unknown target")

// ErrKeyReused means a delivery's idempotency key was used before for
// another text or target.
var ErrKeyReused = errors.New("the idempotency key was used for another delivery")

// homeState names the store state that holds a platform's home chat as
// /sethome set it (a chat.Target as JSON), over the configured one.
func homeState(platform string) string { return "home:" + platform }

// Deliver journals a message of the agent's own (a scheduled job's
// report) for the chats target names, and has it sent in order after
// what was journalled before for the same chats, paced as answers are.
// It returns once the message is journalled. A key journalled before
// sends nothing again: it returns that delivery, with created false.
func (r *Runner) Deliver(ctx context.Context, key, target, text string) (d store.Delivery, created bool, err error) {
	select {
	case <-r.outboxLoaded:
	case <-ctx.Done():
		return d, false, ctx.Err()
	}
	if r.isClosing() {
		return d, false, ErrShuttingDown // journalled now, it would wait for the next start
	}
	// A key journalled before is its delivery, whatever its target names
	// now (a session replaced by /new since).
	switch d, err = r.store.DeliveryByKey(ctx, key); {
	case err == nil:
		return r.replay(d, target, text)
	case !errors.Is(err, store.ErrNotFound):
		return d, false, err
	}
	sends, err := r.resolve(ctx, target)
	if err != nil {
		return d, false, err
	}
	// One at a time from journal to queue, so that the sends to a chat
	// go out in the order they were journalled.
	r.delivering.Lock()
	defer r.delivering.Unlock()
	d, err = r.store.Enqueue(ctx, store.Delivery{Key: key, Target: target, Text: text, Sends: sends})
	switch {
	case errors.Is(err, store.ErrDuplicate): // journalled meanwhile
		return r.replay(d, target, text)
	case err != nil:
		return d, false, err
	}
	for i := range d.Sends {
		r.queueSend(d, i)
	}
	return d, true, nil
}

// replay answers a delivery asked for again with its key: the delivery as
// journalled, unless the key came with another target or text.
func (r *Runner) replay(d store.Delivery, target, text string) (store.Delivery, bool, error) {
	if d.Target != target || d.Text != text {
		return d, false, ErrKeyReused
	}
	r.metrics.Deliveries.WithLabelValues("repeated").Inc()
	return d, false, nil
}

// DeliveryState returns a delivery as it stands.
func (r *Runner) DeliveryState(ctx context.Context, id int64) (store.Delivery, error) {
	return r.store.Delivery(ctx, id)
}

// resolve turns a target, or several separated by commas, into the sends
// they name, each chat once, or an error wrapping ErrUnknownTarget that
// says why one names none.
func (r *Runner) resolve(ctx context.Context, target string) ([]store.Send, error) {
	var sends []store.Send
	for part := range strings.SplitSeq(target, ",") {
		found, err := r.resolveOne(ctx, strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		for _, s := range found {
			if !slices.ContainsFunc(sends, func(had store.Send) bool {
				return had.Platform == s.Platform && had.Target.ChatID == s.Target.ChatID && had.Target.ThreadID == s.Target.ThreadID
			}) {
				sends = append(sends, s)
			}
		}
	}
	return sends, nil
}

func (r *Runner) resolveOne(ctx context.Context, target string) ([]store.Send, error) {
	switch {
	case target == TargetHome || target == TargetAll:
		var sends []store.Send
		for _, name := range slices.Sorted(maps.Keys(r.adapters)) {
			t, ok, err := r.home(ctx, name)
			if err != nil {
				return nil, err
			}
			if ok {
				sends = append(sends, store.Send{Platform: name, Target: t})
			}
		}
		if len(sends) == 0 {
			return nil, fmt.Errorf("%w %q: no platform has a home channel (set one in its settings, or send /sethome in the chat)", ErrUnknownTarget, target)
		}
		if target == TargetHome {
			sends = sends[:1]
		}
		return sends, nil
	case strings.HasPrefix(target, originPrefix):
		sessionID := strings.TrimPrefix(target, originPrefix)
		c, err := r.store.ChatOfSession(ctx, sessionID)
		if err == nil && !r.mayReceive(ctx, c) {
			err = store.ErrNotFound
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w %q: no conversation is in session %q", ErrUnknownTarget, target, sessionID)
		} else if err != nil {
			return nil, err
		}
		if r.adapters[c.Source.Platform] == nil {
			return nil, fmt.Errorf("%w %q: its platform %s is not enabled, or is a further account (deliveries go through the main accounts)", ErrUnknownTarget, target, c.Source.Platform)
		}
		return []store.Send{{Platform: c.Source.Platform, Target: chatTarget(c.Source)}}, nil
	}
	name, where, _ := strings.Cut(target, ":")
	if r.adapters[name] == nil {
		return nil, fmt.Errorf("%w %q: %q is not an enabled platform, nor home, all or origin:<session id>", ErrUnknownTarget, target, name)
	}
	if where == "" {
		t, ok, err := r.home(ctx, name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w %q: %s has no home channel (set one in its settings, or send /sethome in the chat)", ErrUnknownTarget, target, name)
		}
		return []store.Send{{Platform: name, Target: t}}, nil
	}
	t, err := r.chatNamed(ctx, name, where)
	if errors.Is(err, errNotKnown) {
		return nil, fmt.Errorf("%w %q: %w", ErrUnknownTarget, target, err)
	} else if err != nil {
		return nil, err
	}
	return []store.Send{{Platform: name, Target: t}}, nil
}

// chatNamed finds the chat (and thread) "<chat>[:<thread>]" names on a
// platform. Chat ids may hold colons (Matrix's !room:server): the whole is
// tried as a chat first. Only a chat a message came from, or the
// platform's home chat, is a chat Herald may deliver to, unless
// Options.DeliverAnyChat.
func (r *Runner) chatNamed(ctx context.Context, platform, where string) (chat.Target, error) {
	tries := []chat.Target{{ChatID: where}}
	if i := strings.LastIndex(where, ":"); i > 0 && i < len(where)-1 {
		tries = append(tries, chat.Target{ChatID: where[:i], ThreadID: where[i+1:]})
	}
	home, hasHome, err := r.home(ctx, platform)
	if err != nil {
		return chat.Target{}, err
	}
	for _, t := range tries {
		c, err := r.store.FindChat(ctx, platform, t.ChatID, t.ThreadID)
		if err == nil && !r.mayReceive(ctx, c) {
			err = store.ErrNotFound
		}
		switch {
		case err == nil:
			known := chatTarget(c.Source)
			known.ThreadID = t.ThreadID
			return known, nil
		case !errors.Is(err, store.ErrNotFound):
			return chat.Target{}, err
		case hasHome && home.ChatID == t.ChatID:
			home.ThreadID = t.ThreadID
			return home, nil
		}
	}
	if r.settings().DeliverAnyChat {
		if len(tries) > 1 && looksLikeThread(tries[1].ThreadID) {
			return tries[1], nil
		}
		return tries[0], nil
	}
	return chat.Target{}, errNotKnown
}

// errNotKnown says why a chat is no target.
var errNotKnown = errors.New("no message came from that chat and it is not the home channel (delivery.allow_any_chat lets deliveries go to any chat)")

// looksLikeThread tells the end of "<chat>:<thread>" that is a thread's id
// on the platforms: a number (a Telegram topic, a Discord thread), a
// timestamp (Slack's) or an event id (Matrix's $…); the end of a Matrix
// room id (its server's name) is none of these.
func looksLikeThread(s string) bool {
	if strings.HasPrefix(s, "$") {
		return true
	}
	return s != "" && strings.Trim(s, "0123456789.") == ""
}

// setHome makes the chat src came from its platform's home chat, if its
// author is named in an allowlist or paired (a wildcard or a group's list
// lets a user talk, not redirect the agent's reports), and says how it
// went.
func (r *Runner) setHome(ctx context.Context, src chat.Source) string {
	if !r.named(ctx, src) {
		r.log.Info("/sethome refused: the user is not named in an allowlist", "platform", src.Platform, "user", src.UserID)
		return texts.HomeRefused
	}
	home, err := json.Marshal(chatTarget(src))
	if err == nil {
		err = r.store.SetState(ctx, homeState(src.Platform), string(home))
	}
	if err != nil {
		r.log.Error("setting the home channel failed", "platform", src.Platform, "error", err)
		return texts.HomeFailed
	}
	r.log.Info("home channel set", "platform", src.Platform, "chat", src.ChatID, "thread", src.ThreadID)
	name := src.ChatName
	if name == "" {
		name = src.ChatID
	}
	return texts.HomeSet(name)
}

// mayReceive reports whether a known chat may get the agent's messages: a
// direct chat only while its user may talk to the agent (a stranger who
// wrote to the bot made the chat known, not a place for reports).
func (r *Runner) mayReceive(ctx context.Context, c store.Chat) bool {
	return c.Source.ChatType != chat.DM || r.allowed(ctx, c.Source)
}

// home returns a platform's home chat: the one /sethome set, else the
// configured one.
func (r *Runner) home(ctx context.Context, platform string) (chat.Target, bool, error) {
	v, ok, err := r.store.State(ctx, homeState(platform))
	if err != nil {
		return chat.Target{}, false, fmt.Errorf("reading %s's home channel: %w", platform, err)
	}
	if ok {
		var t chat.Target
		if err := json.Unmarshal([]byte(v), &t); err != nil {
			return chat.Target{}, false, fmt.Errorf("reading %s's home channel: %w", platform, err)
		}
		return t, true, nil
	}
	t, ok := r.opts.Homes[platform]
	return t, ok, nil
}

// chatTarget is where a message of the agent's own goes in the chat src
// came from: its thread, replying to nobody.
func chatTarget(src chat.Source) chat.Target {
	return chat.Target{ChatID: src.ChatID, ThreadID: src.ThreadID, DM: src.ChatType == chat.DM}
}

// sendRef is one send of a journalled delivery.
type sendRef struct {
	d    store.Delivery
	send int
}

// loadOutbox takes up the sends a previous run left on the runner's
// platforms: a queued one is sent, one found sending is marked uncertain
// (its call may have reached the platform, and sending it again could
// show it twice). Deliver waits for it, so that what was journalled first
// is sent first.
func (r *Runner) loadOutbox(ctx context.Context) error {
	defer close(r.outboxLoaded)
	unsent, err := r.store.UnsentDeliveries(ctx)
	if err != nil {
		return fmt.Errorf("reading the outbox: %w", err)
	}
	var uncertain []sendRef
	for _, d := range unsent {
		for i, s := range d.Sends {
			if r.adapters[s.Platform] == nil {
				continue // another runner's
			}
			switch s.Status {
			case store.Sending:
				r.log.Warn("a restart came while a delivery was sent; it is not sent again", "delivery", d.ID, "platform", s.Platform)
				uncertain = append(uncertain, sendRef{d, i})
			case store.Queued:
				r.queueSend(d, i)
			}
		}
	}
	if len(uncertain) > 0 {
		// Recorded in the runner's work, so that a journal that cannot be
		// written (a full disk) does not hold up the start, nor SIGTERM.
		r.settleAsync(func() {
			for _, ref := range uncertain {
				r.settleSend(ref.d, ref.send, store.Uncertain, "a restart came while it was sent: it may not have arrived", ref.d.Sends[ref.send].MessageIDs)
			}
		})
	}
	return nil
}

// queueSend has a send delivered after those queued before it for the
// same chat, each chat's in their own goroutine.
func (r *Runner) queueSend(d store.Delivery, send int) {
	s := d.Sends[send]
	key := s.Platform + "\x00" + s.Target.ChatID
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return // journalled: the next start sends it
	}
	q, running := r.outbox[key]
	r.outbox[key] = append(q, sendRef{d, send})
	if running {
		return
	}
	r.work.Add(1)
	go func() {
		defer r.work.Done()
		for {
			r.mu.Lock()
			q := r.outbox[key]
			if len(q) == 0 || r.closing {
				delete(r.outbox, key)
				r.mu.Unlock()
				return
			}
			r.outbox[key] = q[1:]
			r.mu.Unlock()
			r.send(q[0])
		}
	}()
}

// send delivers one send, paced with the chat's answers. It is marked
// sending just before its first call goes out, so that a crash during
// that call cannot send it twice.
func (r *Runner) send(ref sendRef) {
	d, s := ref.d, ref.d.Sends[ref.send]
	a := r.adapters[s.Platform]
	if a == nil {
		r.log.Warn("a delivery's platform is not enabled; leaving it queued", "delivery", d.ID, "platform", s.Platform)
		return
	}
	select {
	case <-a.Ready():
	case <-r.stopping:
		return
	}
	var shown bool
	t := s.Target
	t.Once = fmt.Sprintf("delivery %d.%d", d.ID, ref.send)
	out, err := r.say(a, t, d.Text, stream.Params{
		BeforeShown: func() {
			shown = true
			r.settleSend(d, ref.send, store.Sending, "", nil)
		},
		Refused: func() {
			shown = false
			r.settleSend(d, ref.send, store.Queued, "", nil)
		},
	})
	switch {
	case err == nil:
		r.keepDelivered(s, d.Text)
		r.settleSend(d, ref.send, store.Sent, "", out.MessageIDs)
	case !shown && r.sendCtx.Err() != nil:
		r.log.Info("a delivery cut off by the shutdown is left for the next start", "delivery", d.ID)
	case r.sendCtx.Err() != nil:
		r.settleSend(d, ref.send, store.Uncertain, "the shutdown cut it off during its call: it may have arrived", out.MessageIDs)
	default:
		r.log.Error("a delivery failed", "delivery", d.ID, "platform", s.Platform, "error", err)
		r.settleSend(d, ref.send, store.NotSent, err.Error(), out.MessageIDs)
	}
}

// keepDelivered keeps a delivered message in the transcript of the
// conversation last seen in its chat, as a notice: a web chat page that
// was not open shows it, and the agent never gets it (Hermes's agent does
// not see its cron deliveries either). A chat whose first message has not
// started its conversation yet gets it started here. A chat nobody wrote
// in has no conversation to keep it in.
func (r *Runner) keepDelivered(s store.Send, text string) {
	ctx := context.Background()
	c, err := r.store.FindChat(ctx, s.Platform, s.Target.ChatID, s.Target.ThreadID)
	if err != nil {
		return
	}
	sessionID, err := r.sessionID(ctx, c.SessionKey)
	if err == nil {
		err = r.store.Append(ctx, sessionID, store.Entry{Role: chat.Notice, Content: text, At: time.Now()})
	}
	if err != nil {
		r.log.Warn("keeping a delivered message in the transcript failed", "platform", s.Platform, "error", err)
	}
}

// settleSend records where a send stands, and counts its outcome.
func (r *Runner) settleSend(d store.Delivery, send int, status store.SendStatus, errText string, ids []string) {
	r.durably(context.Background(), "recording a delivery", r.log.With("delivery", d.ID), func(ctx context.Context) error {
		return r.store.SetSendStatus(ctx, d.ID, send, status, errText, ids)
	})
	switch status {
	case store.Sent, store.NotSent, store.Uncertain:
		r.metrics.Deliveries.WithLabelValues(string(status)).Inc()
	}
}
