package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/stream"
)

// execute runs one turn: backend, streaming delivery, transcript, journal.
func (r *Runner) execute(j *job) {
	turn, in := j.turn, j.turn.Inbound
	log := r.log.With("turn", turn.ID, "session_key", turn.SessionKey)
	if cause := context.Cause(j.ctx); cause != nil {
		// Cancelled before it started: at shutdown it stays journalled for
		// the next start; otherwise a newer message or a command replaced it.
		if !errors.Is(cause, errShutdown) {
			r.finishTurn(turn, store.Delivered, "not run: "+cause.Error())
		}
		return
	}
	if err := r.store.SetTurnStatus(context.Background(), turn.ID, store.Running, ""); err != nil {
		log.Error("journalling the turn's start failed", "error", err)
		return
	}
	sessionID, err := r.sessionID(j.ctx, turn.SessionKey)
	if err != nil {
		log.Error("reading the session failed", "error", err)
		r.finishTurn(turn, store.Failed, err.Error())
		return
	}
	entries, err := r.store.History(j.ctx, sessionID, r.opts.HistoryLimit)
	if err != nil {
		log.Error("reading the transcript failed", "error", err)
	}
	history := make([]chat.Message, len(entries))
	for i, e := range entries {
		history[i] = chat.Message{Role: e.Role, Content: e.Content}
	}

	r.metrics.ActiveTurns.Inc()
	defer r.metrics.ActiveTurns.Dec()
	r.mark(j.adapter, in.Source, platform.TurnWorking)
	delivery := r.startDelivery(j.adapter, in.Source, func() {
		if err := r.store.MarkShown(context.Background(), turn.ID); err != nil {
			log.Error("journalling that the answer is shown failed", "error", err)
		}
	})
	start, first := time.Now(), true
	res := r.backend.Run(j.ctx, agent.Turn{
		SessionID: sessionID,
		Message:   in.Text,
		Images:    images(in.Attachments),
		History:   history,
		Source:    in.Source,
	}, func(ev agent.Event) {
		if first && ev.Kind == agent.EventDelta {
			first = false
			r.metrics.FirstDelta.Observe(time.Since(start).Seconds())
		}
		delivery.Handle(ev)
	})

	final, outcome := r.finalText(j, res)
	delivered, derr := delivery.Finish(r.sendCtx, final)
	r.metrics.Edits.Add(float64(delivered.Edits))
	r.metrics.RateLimitWaits.Add(float64(delivered.RateLimitWaits))

	if res.SessionID != "" && res.SessionID != sessionID {
		// Adopt the server's rotated id, unless /new replaced the session meanwhile.
		if cur, _, err := r.store.SessionID(context.Background(), turn.SessionKey); err == nil && cur == sessionID {
			if err := r.store.SetSessionID(context.Background(), turn.SessionKey, res.SessionID); err != nil {
				log.Error("recording the rotated session id failed", "error", err)
			}
		}
		sessionID = res.SessionID
	}
	answer := store.Entry{Role: chat.Assistant, Content: final, At: time.Now()}
	if n := len(delivered.MessageIDs); n > 0 {
		answer.MessageID = delivered.MessageIDs[n-1]
	}
	if err := r.store.Append(context.Background(), sessionID,
		store.Entry{Role: chat.User, Content: in.Text, MessageID: in.Source.MessageID, At: in.Received},
		answer); err != nil {
		log.Error("recording the transcript failed", "error", err)
	}
	if derr != nil {
		log.Error("delivering the answer failed", "error", derr)
		r.metrics.Turns.WithLabelValues("failed").Inc()
		r.mark(j.adapter, in.Source, platform.TurnFailed)
		r.finishTurn(turn, store.Failed, derr.Error())
		return
	}
	r.metrics.Turns.WithLabelValues(outcome).Inc()
	if outcome == "error" {
		r.mark(j.adapter, in.Source, platform.TurnFailed)
	} else {
		r.mark(j.adapter, in.Source, platform.TurnDone)
	}
	r.finishTurn(turn, store.Delivered, errText(res.Err))
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
		if res.Text == "" {
			return shutdownNotice, "interrupted"
		}
		return res.Text + "\n\n" + shutdownNotice, "interrupted"
	}
	if res.Err != nil {
		r.metrics.UpstreamErrors.WithLabelValues(errorKind(res.Err)).Inc()
		return res.FinalResponse, "error"
	}
	return res.FinalResponse, "delivered"
}

func errorKind(err error) string {
	var status *agent.StatusError
	var conn *agent.ConnectionError
	switch {
	case errors.As(err, &status):
		return "status"
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

// mark shows a turn's state on the asking message, where the platform
// does that (platform.TurnMarker), through the chat's rate-limit gate like
// every other call. It is a courtesy: a failure is logged.
func (r *Runner) mark(a platform.Adapter, src chat.Source, state platform.TurnState) {
	m, ok := a.(platform.TurnMarker)
	if !ok {
		return
	}
	err := r.gates.For(a.Name(), src.ChatID).Do(r.sendCtx, 0, func(ctx context.Context) error {
		return m.TurnStatus(ctx, platform.TargetOf(src), state)
	})
	if err != nil {
		r.log.Debug("marking the turn failed", "state", state, "error", err)
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

// startDelivery begins delivering an answer to where src came from.
func (r *Runner) startDelivery(a platform.Adapter, src chat.Source, onShown func()) *stream.Delivery {
	opts := r.opts.Streaming
	if on, ok := r.opts.PlatformStreaming[a.Name()]; ok {
		opts.Enabled = on
	}
	return stream.Start(r.sendCtx, stream.Params{
		Adapter:      a,
		Target:       platform.TargetOf(src),
		DM:           src.ChatType == chat.DM,
		Gate:         r.gates.For(a.Name(), src.ChatID),
		Options:      opts,
		OnFirstShown: onShown,
	})
}

// reply sends a short text from the gateway itself (a command's answer, a
// notice) through the same paced delivery as answers.
func (r *Runner) reply(a platform.Adapter, src chat.Source, text string) error {
	_, err := r.startDelivery(a, src, nil).Finish(r.sendCtx, text)
	return err
}

// replyAsync answers a journalled message with the text compose returns
// (nothing when it is empty) and marks the turn delivered.
func (r *Runner) replyAsync(a platform.Adapter, turn store.Turn, compose func(ctx context.Context) string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return // stays Received in the journal; the next start answers it
	}
	r.work.Add(1)
	go func() {
		defer r.work.Done()
		text := compose(r.sendCtx)
		if text == "" {
			r.finishTurn(turn, store.Delivered, "")
			return
		}
		if err := r.reply(a, turn.Inbound.Source, text); err != nil {
			r.log.Error("sending a reply failed", "turn", turn.ID, "error", err)
			r.finishTurn(turn, store.Failed, err.Error())
			return
		}
		r.finishTurn(turn, store.Delivered, "")
	}()
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
			r.log.Warn("an unfinished turn's platform is not enabled; leaving it", "turn", turn.ID, "platform", name)
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
				if turn.Shown {
					r.log.Info("telling the user an answer was cut off by a restart", "turn", turn.ID)
					r.replyAsync(a, turn, func(context.Context) string { return interruptedByRestart })
					continue
				}
				r.log.Info("resuming a turn left unfinished", "turn", turn.ID)
				r.dispatch(context.Background(), a, turn)
			}
		}()
	}
}
