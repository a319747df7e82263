package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/stream"
	"github.com/herald-chat/herald/internal/texts"
)

// execute runs one turn: prepare it, run it through the backend into a
// streaming delivery, and record how it ended.
func (r *Runner) execute(j *job) {
	log := r.turnLog(j.turn)
	r.startSpan(j)
	defer j.span.End()
	run, ok := r.prepare(j, log)
	if !ok {
		return
	}
	j.span.SetAttributes(attribute.String("herald.session", run.sessionID))
	log = log.With("session", run.sessionID)
	r.metrics.ActiveTurns.Inc()
	defer r.metrics.ActiveTurns.Dec()
	out := r.run(j, run, log)
	j.span.SetAttributes(attribute.String("herald.outcome", out.outcome))
	if out.outcome == "error" || out.outcome == "failed" {
		j.span.SetStatus(codes.Error, out.outcome)
	}
	r.record(j, run, out, log)
}

// prepared is a turn ready to run: its session and what the agent is sent.
type prepared struct {
	target    chat.Target
	sessionID string
	history   []chat.Message
}

// prepare journals that a turn starts and reads its session and history.
// It reports false when the turn is not to run: cancelled before it
// started, or its session unreadable (the turn is then recorded as failed).
func (r *Runner) prepare(j *job, log *slog.Logger) (prepared, bool) {
	turn := j.turn
	if r.cancelledBeforeStart(j) {
		return prepared{}, false
	}
	if err := journal(j.traced(j.ctx), "journalling the turn's start", func(ctx context.Context) error {
		return r.store.SetTurnStatus(ctx, turn.ID, store.Running, "")
	}); err != nil {
		// Received and Running are both taken up again at the next start.
		log.Warn("journalling the turn's start failed; running it all the same", "error", err)
	}
	sessionID, err := r.sessionID(j.ctx, turn.SessionKey)
	if err != nil && r.cancelledBeforeStart(j) {
		return prepared{}, false
	}
	if err != nil {
		log.Error("reading the session failed", "error", err)
		r.finishTurn(j.traced(j.ctx), turn, store.Failed, err.Error())
		return prepared{}, false
	}
	entries, err := r.store.History(j.ctx, sessionID, r.opts.HistoryLimit)
	if err != nil && r.cancelledBeforeStart(j) {
		return prepared{}, false
	}
	if err != nil {
		log.Error("reading the transcript failed", "error", err)
	}
	if len(entries) > 0 {
		if why := r.settings().SessionReset.due(entries[len(entries)-1].At, time.Now()); why != "" {
			sessionID, entries = r.resetSession(j, sessionID, why, log), nil
		}
	}
	// The gateway's own notices are the chat's, not the conversation's.
	history := slices.DeleteFunc(messages(entries), func(m chat.Message) bool { return m.Role == chat.Notice })
	return prepared{target: turn.Inbound.AnswerTarget(), sessionID: sessionID, history: history}, true
}

// cancelledBeforeStart ends a turn whose context was cancelled before its
// run began: at shutdown it stays journalled for the next start; otherwise
// a newer message or a command replaced it.
func (r *Runner) cancelledBeforeStart(j *job) bool {
	cause := context.Cause(j.ctx)
	if cause == nil {
		return false
	}
	if !errors.Is(cause, errShutdown) {
		r.finishTurn(j.traced(j.ctx), j.turn, store.Delivered, "not run: "+cause.Error())
	}
	return true
}

// ran is how a turn went.
type ran struct {
	res       agent.Result
	final     string // the text the chat ends with
	outcome   string // for the metrics: delivered, error, interrupted, stopped
	delivered stream.Outcome
	err       error // the final text could not be delivered
	detached  bool  // left to its run on the agent server at shutdown
}

// run sends the turn to the backend and streams its answer into the chat
// until the final text is delivered. A turn whose run on the agent server
// was journalled before a restart follows that run, and finishes the
// answer in the messages that showed it.
func (r *Runner) run(j *job, p prepared, log *slog.Logger) ran {
	turn, in := j.turn, j.turn.Inbound
	var out ran
	var mu sync.Mutex
	progress := turn.Progress
	saveProgress := func(update func(*store.Progress)) {
		mu.Lock()
		update(&progress)
		now := store.Progress{RunID: progress.RunID, MessageIDs: slices.Clone(progress.MessageIDs)}
		mu.Unlock()
		r.durably(j.traced(j.ctx), "journalling the turn's progress", log, func(ctx context.Context) error {
			return r.store.SetTurnProgress(ctx, turn.ID, now)
		})
	}
	delivery, done := r.startDelivery(j.traced(r.sendCtx), j.adapter, p.target, stream.Params{
		BeforeShown: func() {
			// Durable before the text goes out: after a crash during the
			// call the turn gets a notice rather than a second answer.
			r.durably(j.traced(j.ctx), "journalling that the answer is shown", log, func(ctx context.Context) error {
				return r.store.MarkShown(ctx, turn.ID)
			})
		},
		Sent: func(ids []string) {
			saveProgress(func(p *store.Progress) { p.MessageIDs = ids })
		},
		BeforeFinal: func(ids []string) {
			// After a crash during the final edits they are made again,
			// rather than a notice sent after a complete answer.
			r.durably(j.traced(j.ctx), "journalling the final text", log, func(ctx context.Context) error {
				return r.store.SetTurnFinal(ctx, turn.ID, store.Final{Text: out.final, MessageIDs: ids})
			})
		},
		Resume: turn.Progress.MessageIDs,
	}, r.log.With("turn", turn.ID, "session", p.sessionID))
	defer done()
	r.mark(delivery, platform.TurnWorking, log)
	start, first := time.Now(), true
	at := agent.Turn{
		SessionID: p.sessionID,
		Message:   in.Text,
		Images:    images(in.Attachments),
		History:   p.history,
		Source:    in.Source,
		Key:       runKey(turn),
		RunID:     turn.Progress.RunID,
		Started: func(runID string) {
			saveProgress(func(p *store.Progress) { p.RunID = runID })
			r.mu.Lock()
			j.runID = runID
			r.mu.Unlock()
		},
	}
	r.mu.Lock()
	j.runID = turn.Progress.RunID
	r.mu.Unlock()
	resumed := len(turn.Progress.MessageIDs) > 0
	tools := r.toolFilter(j.adapter.Name(), log)
	// The backend sends the agent request's span upstream (W3C
	// traceparent), so that the agent's own spans join the turn's.
	agentCtx, request := r.tracer.Start(j.traced(j.ctx), "agent request", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("herald.backend", r.backend.Name())))
	emit := func(ev agent.Event) {
		if first && ev.Kind == agent.EventDelta {
			first = false
			r.metrics.FirstDelta.Observe(time.Since(start).Seconds())
			request.AddEvent("first delta")
		}
		if !resumed && tools.shows(ev) {
			// Messages resumed show text of unknown length: the
			// run's complete text is edited into them at the end.
			delivery.Handle(ev)
		}
	}
	res := r.backend.Run(agentCtx, at, emit)
	defer func() {
		r.mu.Lock()
		j.unread = func(text string) bool { return res.Err != nil || strings.Contains(res.PendingSteer, text) }
		r.mu.Unlock()
	}()
	if errors.Is(res.Err, agent.ErrRunUnknown) && !turn.Shown {
		log.Info("the agent server no longer knows the turn's run; running the turn again", "error", res.Err)
		// Under its own key: the first may still name the lost run (a
		// server that restarted answers it "interrupted"). The new key is
		// the same at every start, so a crash now still runs it once.
		at.RunID = ""
		if at.Key != "" {
			at.Key += "-again"
		}
		res = r.backend.Run(agentCtx, at, emit)
	}
	if errors.Is(res.Err, agent.ErrDetached) {
		// Shutting down: the run goes on, and the next start follows it.
		request.End()
		delivery.Abandon()
		out.detached = true
		return out
	}
	out.res = res
	out.final, out.outcome = r.finalText(j, res)
	if out.outcome == "error" {
		agentFailed(log, request, res.Err)
	}
	request.End()
	r.finish(j, delivery, p.target, &out)
	r.metrics.Edits.Add(float64(out.delivered.Edits))
	r.metrics.RateLimitWaits.Add(float64(out.delivered.RateLimitWaits))
	if out.err != nil {
		out.outcome = "failed"
	}
	r.metrics.Turns.WithLabelValues(out.outcome).Inc()
	if out.outcome == "failed" || out.outcome == "error" {
		r.mark(delivery, platform.TurnFailed, log)
	} else {
		r.mark(delivery, platform.TurnDone, log)
	}
	return out
}

// runKey is the idempotency key of a journalled turn's run on the agent
// server: the same at every attempt at the turn, so that one started again
// after a crash gets its run back rather than making the agent work twice;
// and, with the session key and the time it was journalled, not the key of
// another gateway's turn (a fresh journal counts ids from 1 again).
func runKey(turn store.Turn) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", turn.SessionKey, turn.ID, turn.CreatedAt.UnixNano()))
	return "herald-" + hex.EncodeToString(sum[:16])
}

// lateDeliveryAllowance is how long a final text that begins after the
// shutdown grace may take before it is cut short too (our choice): the
// runner waits the grace period and 5 s more for deliveries, and the
// notice must fit in what is left.
const lateDeliveryAllowance = 2 * time.Second

// finish delivers a turn's final text on a context that /stop and the end
// of the shutdown grace cancel (the turn's own may be over already: a
// stopped turn still shows its notice). When they cut it short, the chat is
// told why in a message of its own.
func (r *Runner) finish(j *job, d *stream.Delivery, t chat.Target, out *ran) {
	ctx, stop := context.WithCancelCause(j.traced(r.sendCtx))
	defer stop(nil)
	r.mu.Lock()
	j.stopDelivery = stop
	// What came before the delivery could be reached: a /stop after the
	// final text was chosen, or the end of the grace period.
	lateStop := errors.Is(context.Cause(j.ctx), errStopped) && out.outcome != "stopped"
	shuttingDown := errors.Is(context.Cause(r.turnsCtx), errShutdown)
	r.mu.Unlock()
	if lateStop {
		stop(errStopped)
	}
	if shuttingDown {
		// A final text that began after the grace period (a cut answer and
		// its notice, usually one edit) gets a little longer, not minutes.
		cut := time.AfterFunc(lateDeliveryAllowance, func() { stop(errShutdown) })
		defer cut.Stop()
	}
	out.delivered, out.err = d.Finish(ctx, out.final)
	cause := context.Cause(ctx)
	var notice string
	switch {
	case out.err == nil:
		return
	case errors.Is(cause, errStopped):
		out.outcome, notice = "stopped", texts.Stopped
	case errors.Is(cause, errShutdown) && r.quiet(j.adapter):
		out.outcome = "interrupted"
		return
	case errors.Is(cause, errShutdown):
		out.outcome, notice = "interrupted", texts.ShutdownNotice
	default:
		return
	}
	r.turnLog(j.turn).Info("the final text's delivery was cut short", "cause", cause)
	if !strings.HasSuffix(out.final, notice) {
		out.final = texts.WithNotice(out.final, notice)
	}
	out.err = r.reply(j.adapter, t, notice, stream.Params{})
}

// record keeps what a turn leaves: the session the agent rotated to, the
// exchange in the transcript, the turn's end in the journal.
func (r *Runner) record(j *job, p prepared, out ran, log *slog.Logger) {
	turn, in := j.turn, j.turn.Inbound
	if out.detached {
		log.Info("the turn's run goes on without the gateway; the next start follows it")
		return
	}
	sessionID := p.sessionID
	if rotated := out.res.SessionID; rotated != "" && rotated != sessionID {
		// Adopt the server's rotated id, unless /new replaced the session meanwhile.
		if _, err := r.store.SwapSessionID(context.Background(), turn.SessionKey, sessionID, rotated); err != nil {
			log.Error("recording the rotated session id failed", "error", err)
		}
		sessionID = rotated
	}
	r.appendExchange(sessionID, in, out.final, out.delivered.MessageIDs, log)
	if out.err != nil {
		log.Error("delivering the answer failed", "error", out.err)
		r.finishTurn(j.traced(j.ctx), turn, store.Failed, out.err.Error())
		return
	}
	r.finishTurn(j.traced(j.ctx), turn, store.Delivered, errText(out.res.Err))
}

// appendExchange adds a message and the answer the chat ends with (in the
// last of messageIDs) to a session's transcript.
func (r *Runner) appendExchange(sessionID string, in chat.Inbound, final string, messageIDs []string, log *slog.Logger) {
	if !r.settings().KeepThinking {
		final = format.StripThinking(final)
	}
	answer := store.Entry{Role: chat.Assistant, Content: final, At: time.Now()}
	if n := len(messageIDs); n > 0 {
		answer.MessageID = messageIDs[n-1]
	}
	if err := r.store.Append(context.Background(), sessionID,
		store.Entry{Role: chat.User, Content: in.Text, MessageID: in.Source.MessageID, At: in.Received},
		answer); err != nil {
		log.Error("recording the transcript failed", "error", err)
	}
}

// finalText is what the chat shows at the end of a turn, and the outcome
// for the metrics. An interrupted turn keeps what it had written.
func (r *Runner) finalText(j *job, res agent.Result) (string, string) {
	switch cause := context.Cause(j.ctx); {
	case errors.Is(cause, errInterrupted):
		return res.Text, "interrupted"
	case errors.Is(cause, errStopped):
		return res.FinalResponse, "stopped"
	case errors.Is(cause, errShutdown):
		switch {
		case r.quiet(j.adapter):
			return res.Text, "interrupted"
		case res.Text == "":
			return texts.ShutdownNotice, "interrupted"
		}
		return texts.WithNotice(res.Text, texts.ShutdownNotice), "interrupted"
	}
	if res.Err != nil {
		r.metrics.UpstreamErrors.WithLabelValues(errorKind(res.Err)).Inc()
		if downError(res.Err) {
			r.health.record(res.Err)
		}
		return res.FinalResponse, "error"
	}
	r.health.record(nil)
	return res.FinalResponse, "delivered"
}

func errorKind(err error) string {
	var status *agent.StatusError
	var conn *agent.ConnectionError
	var tooLong *agent.AnswerTooLongError
	switch {
	case errors.As(err, &status):
		return "status"
	case errors.As(err, &tooLong):
		return "answer_too_long"
	case errors.Is(err, agent.ErrTooLarge):
		return "event_too_large"
	case errors.Is(err, agent.ErrNotAStream):
		return "not_a_stream"
	case errors.As(err, &conn):
		return "connection"
	case errors.Is(err, agent.ErrIdleTimeout):
		return "idle_timeout"
	case errors.Is(err, agent.ErrAgentFailed):
		return "agent"
	case errors.Is(err, agent.ErrIncomplete):
		return "incomplete"
	}
	return "other"
}

// mark shows a turn's state on the asking message where the platform
// does that. It is a courtesy: a failure is logged, and a marker the
// budgets cannot spare is skipped.
func (r *Runner) mark(d *stream.Delivery, state platform.TurnState, log *slog.Logger) {
	if _, err := d.Mark(r.sendCtx, state); err != nil {
		log.Debug("marking the turn failed", "state", state, "error", err)
	}
}

// images picks the attachments the agent can see.
func images(attachments []chat.Attachment) []chat.Attachment {
	var out []chat.Attachment
	for _, a := range attachments {
		if a.Kind == "image" && len(a.Data) > 0 {
			out = append(out, a)
		}
	}
	return out
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// startDelivery begins delivering an answer to t, with p's hooks and
// resumed messages, on ctx (the runner's sendCtx, which may carry a turn's
// span: see traced), logging to log (a turn's: with its ids); done gives
// the chat's gate back once the delivery is finished.
func (r *Runner) startDelivery(ctx context.Context, a platform.Adapter, t chat.Target, p stream.Params, log *slog.Logger) (d *stream.Delivery, done func()) {
	p, done = r.params(a, t, p)
	p.Options.Logger = log // the delivery adds the platform and the chat
	return stream.Start(ctx, p), done
}

// params completes a delivery's parameters for a chat: the streaming
// options for its platform, and the chat's gate, which done gives back.
func (r *Runner) params(a platform.Adapter, t chat.Target, p stream.Params) (_ stream.Params, done func()) {
	s := r.settings()
	p.Options = s.Streaming
	if on, ok := s.PlatformStreaming[a.Name()]; ok {
		p.Options.Enabled = on
	}
	p.Options.NoTyping = slices.Contains(s.NoTyping, a.Name())
	p.Adapter, p.Target = a, t
	p.Gate, done = r.gates.For(a.Name(), t.ChatID, a.Caps(t).Budgets)
	return p, done
}

// say sends a text that is complete from the start through the same paced
// delivery as answers, with p's hooks.
func (r *Runner) say(a platform.Adapter, t chat.Target, text string, p stream.Params) (stream.Outcome, error) {
	p, done := r.params(a, t, p)
	defer done()
	return stream.Send(r.sendCtx, p, text)
}

// reply sends a short text from the gateway itself (a command's answer, a
// notice), with p's hooks (see say).
func (r *Runner) reply(a platform.Adapter, t chat.Target, text string, p stream.Params) error {
	_, err := r.say(a, t, text, p)
	return err
}

// refinish makes again the final edits of a turn a crash cut off during
// its final delivery: the chat ends with the final text, edited into the
// messages that showed the answer (an edit made twice changes nothing),
// and no notice follows a complete answer.
func (r *Runner) refinish(a platform.Adapter, turn store.Turn) {
	r.settleAsync(func() {
		d, done := r.startDelivery(r.sendCtx, a, turn.Inbound.AnswerTarget(), stream.Params{Resume: turn.Final.MessageIDs},
			r.log.With("turn", turn.ID, "session_key", turn.SessionKey))
		out, err := d.Finish(r.sendCtx, turn.Final.Text)
		done()
		if err != nil {
			r.turnLog(turn).Error("finishing an answer a restart cut off failed", "error", err)
			r.finishTurn(context.Background(), turn, store.Failed, err.Error())
			return
		}
		if sessionID, ok, err := r.store.SessionID(context.Background(), turn.SessionKey); err == nil && ok && !r.exchangeKept(sessionID, turn.Inbound) {
			r.appendExchange(sessionID, turn.Inbound, turn.Final.Text, out.MessageIDs, r.turnLog(turn))
		}
		r.finishTurn(context.Background(), turn, store.Delivered, "")
	})
}

// exchangeKept reports whether the transcript ends with the exchange of
// message in already: a crash after it was kept and before its turn was
// settled must not keep it twice (the agent would get it twice, and the
// web chat's history would show the answer twice).
func (r *Runner) exchangeKept(sessionID string, in chat.Inbound) bool {
	last, err := r.store.History(context.Background(), sessionID, 2)
	if err != nil || len(last) != 2 {
		return false
	}
	asked := last[0]
	return asked.Role == chat.User && asked.Content == in.Text && asked.MessageID == in.Source.MessageID && last[1].Role == chat.Assistant
}

// quiet reports whether a's chats are not told that a restart or shutdown
// cut an answer short (Options.QuietRestarts).
func (r *Runner) quiet(a platform.Adapter) bool {
	return slices.Contains(r.settings().QuietRestarts, a.Name())
}

// tellRestart sends a restart notice as a reply (see replyAsync), and keeps
// it in the conversation's transcript first: the web chat's history shows
// it to a page that was not open when it was sent. The agent never gets it.
// On a quiet platform it only settles the turn as cut short, with the log
// saying so.
func (r *Runner) tellRestart(a platform.Adapter, turn store.Turn, notice string) {
	if r.quiet(a) {
		r.turnLog(turn).Info("a restart cut an answer short; its chat is not told (gateway_restart_notification is off)")
		r.finishTurn(context.Background(), turn, store.Failed, "cut short by a restart; gateway_restart_notification is off")
		return
	}
	r.replyAsync(a, turn, func(ctx context.Context) string {
		if err := r.keepNotice(ctx, turn, notice); err != nil {
			r.turnLog(turn).Warn("keeping a notice in the transcript failed", "error", err)
		}
		return notice
	})
}

// keptNotices is how far back in a transcript a notice is looked for
// before it is kept again (our choice: more notices than one restart sends
// to a conversation).
const keptNotices = 20

// keepNotice appends notice to the turn's conversation's transcript,
// unless a restart during its reply kept it already.
func (r *Runner) keepNotice(ctx context.Context, turn store.Turn, notice string) error {
	sessionID, ok, err := r.store.SessionID(ctx, turn.SessionKey)
	if err != nil || !ok {
		return err // no session: no transcript to keep it in
	}
	recent, err := r.store.History(ctx, sessionID, keptNotices)
	if err != nil {
		return err
	}
	for _, e := range recent {
		if e.Role == chat.Notice && e.Content == notice {
			return nil
		}
	}
	return r.store.Append(ctx, sessionID, store.Entry{Role: chat.Notice, Content: notice, At: time.Now()})
}

// settleAsync runs settle, which ends a journalled turn, in the runner's
// work, unless the runner is closing: the turn then stays in the journal
// and the next start takes it up.
func (r *Runner) settleAsync(settle func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return
	}
	r.work.Add(1)
	go func() {
		defer r.work.Done()
		settle()
	}()
}

// replyAsync answers a journalled message with the text compose returns
// (nothing when it is empty) and settles the turn. It is settled just
// before the call that sends the reply, once the chat's gate has let that
// call through, and unsettled if the platform refuses the call for its
// rate limit: a crash after the platform took the call cannot send the
// reply again after the restart (Telegram and Slack have no idempotency
// key to make a send safe twice). What that costs is a reply lost to a
// crash during the call itself, before the platform took it. A reply the
// shutdown cuts off before its call stays journalled for the next start.
func (r *Runner) replyAsync(a platform.Adapter, turn store.Turn, compose func(ctx context.Context) string) {
	r.settleAsync(func() {
		text := compose(r.sendCtx)
		if text == "" {
			r.finishTurn(context.Background(), turn, store.Delivered, "")
			return
		}
		settled := false
		err := r.reply(a, turn.Inbound.AnswerTarget(), text, stream.Params{
			BeforeShown: func() {
				r.finishTurn(context.Background(), turn, store.Delivered, "")
				settled = true
			},
			Refused: func() {
				// Not sent: a crash while it waits for the next try must
				// not lose it.
				r.finishTurn(context.Background(), turn, store.Running, "")
				settled = false
			},
		})
		switch {
		case err == nil:
		case !settled && r.sendCtx.Err() != nil:
			r.turnLog(turn).Info("a reply cut off by the shutdown is left for the next start")
		default:
			r.turnLog(turn).Error("sending a reply failed", "error", err)
			r.finishTurn(context.Background(), turn, store.Failed, err.Error())
		}
	})
}

// resume takes up the turns a previous run left unfinished, in order, once
// their platform is connected: one that showed nothing yet runs again; one
// cut off mid-answer gets a notice, so nothing is answered twice and nothing
// is silently lost. Until a platform's turns are dispatched, its new
// messages wait (see handler).
func (r *Runner) resume(pending []store.Turn) {
	byPlatform := map[string][]store.Turn{}
	for _, turn := range pending {
		name := turn.Inbound.Source.Platform
		if r.adapters[name] == nil {
			// Another runner's (a further account's), or a platform no
			// longer enabled (the app warns of those).
			continue
		}
		byPlatform[name] = append(byPlatform[name], turn) // oldest first
	}
	for name, a := range r.adapters {
		turns := byPlatform[name]
		if len(turns) == 0 {
			close(r.resumed[name])
			continue
		}
		r.work.Add(1)
		go func() {
			defer r.work.Done()
			defer close(r.resumed[name])
			select {
			case <-a.Ready():
			case <-r.stopping:
				return
			}
			for _, turn := range turns {
				switch {
				case turn.Shown && turn.Final != nil && len(turn.Final.MessageIDs) > 0:
					r.turnLog(turn).Info("finishing an answer a restart cut off during its final edits")
					r.refinish(a, turn)
				case turn.Shown && turn.Final != nil:
					// The complete answer was going out in new messages
					// (after drafts): whether it arrived, the platform
					// cannot say, and sending it again could show it twice.
					r.turnLog(turn).Info("telling the user a restart came while the answer was sent")
					r.tellRestart(a, turn, texts.RestartedWhileSending(turn.Inbound.Text))
				case turn.Progress.RunID != "":
					// The run went on without the gateway: its answer is
					// finished in the messages that showed it.
					r.turnLog(turn).Info("following the run of a turn a restart cut off", "run", turn.Progress.RunID)
					r.dispatch(context.Background(), a, turn)
				case turn.Shown:
					r.turnLog(turn).Info("telling the user an answer was cut off by a restart")
					r.tellRestart(a, turn, texts.InterruptedByRestart(turn.Inbound.Text))
				default:
					r.turnLog(turn).Info("resuming a turn left unfinished")
					r.dispatch(context.Background(), a, turn)
				}
			}
		}()
	}
}
