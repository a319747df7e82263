package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
)

// openStream is a message started with chat.startStream and not yet
// stopped.
type openStream struct {
	thread string
	shown  string // the markdown it shows, as the delivery gave it
}

// streamKey names a message among the open streams.
func streamKey(channel, ts string) string { return channel + ":" + ts }

// streamsTo tells whether a message to t is a native stream: in a thread,
// answering someone (outside DMs Slack wants the user a stream answers,
// which a message of the agent's own has not), unless Slack refuses
// streams.
func (a *Adapter) streamsTo(t chat.Target) bool {
	return t.ThreadID != "" && (t.DM || t.Asker != "") && !a.noStreams.Load()
}

// Send implements platform.Adapter: a native stream started with the text
// where it streams, else a posted message.
func (a *Adapter) Send(ctx context.Context, t chat.Target, text string) (string, error) {
	if a.streamsTo(t) {
		a.sealThread(ctx, t) // a new message: the one before it is complete
		ts, err := a.startStream(ctx, t, text)
		if err == nil {
			return ts, nil
		}
		var se slack.SlackErrorResponse
		if !errors.As(err, &se) {
			return "", a.failed(err)
		}
		if streamsRefused[se.Err] {
			a.noStreams.Store(true)
			a.log.Info("Slack refused its streaming to this app; answers are posted and updated instead", "error", explain(err))
		} else {
			a.log.Warn("starting a stream failed; posting the message instead", "error", err)
		}
	}
	return a.post(ctx, t, text)
}

// streamsRefused are the errors of chat.startStream that say the app or the
// workspace cannot stream, rather than that this one call failed.
var streamsRefused = map[string]bool{
	"feature_not_enabled": true, "not_allowed": true, "not_enabled": true,
	"missing_scope": true, "unknown_method": true, "method_deprecated": true,
	"not_allowed_token_type": true, "access_denied": true, "invalid_arguments": true,
}

// startStream starts a stream in the target's thread. Outside DMs Slack
// wants the user the stream answers (recipient_user_id, recipient_team_id).
func (a *Adapter) startStream(ctx context.Context, t chat.Target, text string) (string, error) {
	opts := []slack.MsgOption{slack.MsgOptionTS(t.ThreadID), slack.MsgOptionMarkdownText(render(text))}
	if !t.DM {
		opts = append(opts, slack.MsgOptionRecipientUserID(t.Asker), slack.MsgOptionRecipientTeamID(a.me.teamID))
	}
	_, ts, err := a.api.StartStreamContext(ctx, t.ChatID, opts...)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	a.streams[streamKey(t.ChatID, ts)] = &openStream{thread: t.ThreadID, shown: text}
	a.mu.Unlock()
	return ts, nil
}

// post posts a message: a markdown block, with the same text as the
// notification's fallback.
func (a *Adapter) post(ctx context.Context, t chat.Target, text string) (string, error) {
	opts := messageOptions(text)
	if t.ThreadID != "" {
		opts = append(opts, slack.MsgOptionTS(t.ThreadID))
	}
	_, ts, err := a.api.PostMessageContext(ctx, t.ChatID, opts...)
	if err != nil {
		return "", a.failed(err)
	}
	return ts, nil
}

// messageOptions are the text of a posted or updated message: a markdown
// block, which Slack renders as markdown, and the plain text Slack shows in
// notifications (docs.slack.dev/reference/block-kit/blocks/markdown-block).
func messageOptions(text string) []slack.MsgOption {
	r := render(text)
	return []slack.MsgOption{slack.MsgOptionText(r, false), slack.MsgOptionBlocks(slack.NewMarkdownBlock("", r))}
}

// Edit implements platform.Adapter. An open stream the new text continues
// gets the rest appended; one it does not continue is stopped and updated
// like any message.
func (a *Adapter) Edit(ctx context.Context, t chat.Target, id, text string) error {
	if s := a.openStream(t.ChatID, id); s != nil {
		if rest, ok := strings.CutPrefix(text, s.shown); ok {
			if rest == "" {
				return nil
			}
			_, _, err := a.api.AppendStreamContext(ctx, t.ChatID, id, slack.MsgOptionMarkdownText(renderAfter(s.shown, rest)))
			if err == nil {
				a.mu.Lock()
				s.shown = text
				a.mu.Unlock()
				return nil
			}
			if !isCode(err, "message_not_in_streaming_state") {
				return a.failed(err)
			}
			a.closeStream(t.ChatID, id) // Slack ended it: update it instead
		} else if _, err := a.Seal(ctx, t, id); err != nil {
			return err
		}
	}
	_, _, _, err := a.api.UpdateMessageContext(ctx, t.ChatID, id, messageOptions(text)...)
	if err != nil {
		if isCode(err, "message_not_found", "cant_update_message", "edit_window_closed") {
			return fmt.Errorf("%w: %w", platform.ErrCannotEdit, err)
		}
		return a.failed(err)
	}
	return nil
}

// Delete implements platform.Adapter.
func (a *Adapter) Delete(ctx context.Context, t chat.Target, id string) error {
	if _, _, err := a.api.DeleteMessageContext(ctx, t.ChatID, id); err != nil && !isCode(err, "message_not_found") {
		return a.failed(err)
	}
	a.closeStream(t.ChatID, id)
	return nil
}

// Seal implements platform.Sealer: an open stream is stopped.
func (a *Adapter) Seal(ctx context.Context, t chat.Target, id string) (int, error) {
	if a.openStream(t.ChatID, id) == nil {
		return 0, nil
	}
	_, _, err := a.api.StopStreamContext(ctx, t.ChatID, id)
	if err != nil && !isCode(err, "message_not_in_streaming_state", "message_not_found") {
		return 1, a.failed(err)
	}
	a.closeStream(t.ChatID, id)
	return 1, nil
}

// sealThread stops the streams still open in the target's thread.
func (a *Adapter) sealThread(ctx context.Context, t chat.Target) {
	a.mu.Lock()
	var open []string
	for k, s := range a.streams {
		if channel, ts, _ := strings.Cut(k, ":"); channel == t.ChatID && s.thread == t.ThreadID {
			open = append(open, ts)
		}
	}
	a.mu.Unlock()
	for _, ts := range open {
		if _, err := a.Seal(ctx, t, ts); err != nil {
			a.log.Debug("stopping a stream failed", "error", err)
		}
	}
}

func (a *Adapter) openStream(channel, ts string) *openStream {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.streams[streamKey(channel, ts)]
}

func (a *Adapter) closeStream(channel, ts string) {
	a.mu.Lock()
	delete(a.streams, streamKey(channel, ts))
	a.mu.Unlock()
}

// Typing implements platform.Adapter: the thread's status says the agent
// is thinking.
func (a *Adapter) Typing(ctx context.Context, t chat.Target) error {
	return a.Status(ctx, t, "")
}

// Status implements platform.Statuser with assistant.threads.setStatus,
// in threads, where the app may set it; "" is "is thinking…".
func (a *Adapter) Status(ctx context.Context, t chat.Target, status string) error {
	if t.ThreadID == "" || a.noStatus.Load() {
		return nil
	}
	if status == "" {
		status = thinking
	}
	err := a.api.SetAssistantThreadsStatusContext(ctx, slack.AssistantThreadsSetStatusParameters{
		ChannelID: t.ChatID, ThreadTS: t.ThreadID, Status: status,
	})
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && streamsRefused[se.Err] {
		a.noStatus.Store(true)
		a.log.Info("Slack refused the thread status to this app (it is not an AI app, or lacks assistant:write); no status is shown", "error", explain(err))
		return nil
	}
	return a.failed(err)
}

// failed turns a Web API error into the adapter's: a 429 into a
// *platform.RateLimitError, Slack down into platform.ErrUnavailable.
func (a *Adapter) failed(err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &platform.RateLimitError{RetryAfter: rl.RetryAfter, Err: err}
	}
	var status slack.StatusCodeError
	if errors.As(err, &status) {
		return platform.Unavailable(err, status.Code)
	}
	return platform.Unavailable(err, 0)
}

// isCode tells whether err is a Web API error with one of these codes.
func isCode(err error, codes ...string) bool {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.Err == c {
			return true
		}
	}
	return false
}
