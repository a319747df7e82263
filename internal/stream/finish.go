package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

// Mark shows the turn's state on the asking message where the platform
// does that (platform.TurnMarker), through the chat's gate like every other
// call. A marker is a courtesy: it is skipped when the budgets do not hold
// its calls besides the tokens text still needs (this answer's first and
// final text while the turn works, and room for the next answer). It
// reports whether the marker went out.
func (d *Delivery) Mark(ctx context.Context, state platform.TurnState) (bool, error) {
	m, ok := d.ad.(platform.TurnMarker)
	calls := d.shape.caps.MarkerCalls
	if !ok || calls == 0 {
		return false, nil
	}
	s := spend{class: platform.Markers, cost: calls, spare: true}
	if state == platform.TurnWorking {
		s.keep = 2 // this answer's first and final text
	}
	var made int
	ran, err := d.gate.try(ctx, s, func(ctx context.Context) (err error) {
		made, err = m.TurnStatus(ctx, d.target, state)
		return err
	})
	if ran && made < calls {
		d.gate.refund(s, calls-made) // fewer calls than were provided for
	}
	return ran, err
}

// Finish makes the chat show exactly format.StripThinking(final), the
// backend's final text, split over as many messages as it needs: messages
// already sent are edited to their final part, one left over from a longer
// intermediate text is deleted, the rest is sent. The final state has no
// cursor and no status line. It stops the delivery's worker and must be
// called once. The error, wrapping ErrNotDelivered, says the final answer
// could not be delivered in full, so the turn should be recorded as failed.
func (d *Delivery) Finish(ctx context.Context, final string) (Outcome, error) {
	if !d.halt() {
		return Outcome{}, errors.New("stream: Finish called twice")
	}
	err := d.finish(ctx, format.StripThinking(final))
	out := d.out
	for _, m := range d.screen.sealed {
		out.MessageIDs = append(out.MessageIDs, m.id)
	}
	return out, err
}

// Abandon ends the delivery without a final text: the messages stay as
// they are, for the next start to finish (the turn's run goes on without
// the gateway). It stands for Finish.
func (d *Delivery) Abandon() { d.halt() }

// halt stops the delivery's worker, once: it reports false when it was
// stopped already.
func (d *Delivery) halt() bool {
	d.mu.Lock()
	if d.finishing {
		d.mu.Unlock()
		return false
	}
	d.finishing = true
	d.mu.Unlock()
	close(d.stop)
	d.timer.Stop()
	d.workers.Wait()
	return true
}

// finalTargets are the messages to be edited into the final text f: the
// active one, and the sealed ones too when f does not continue what they
// show (those that cannot be edited are returned apart, to be deleted).
// What stays sealed is returned first.
func finalTargets(s screen, f string) (sealed, targets, stale []*message) {
	sealed = s.sealed
	if n := len(sealed); n > 0 && (sealed[n-1].unknown || !strings.HasPrefix(f, sealed[n-1].upTo)) {
		for _, m := range sealed {
			if m.dead {
				stale = append(stale, m)
				continue
			}
			targets = append(targets, m)
		}
		sealed = nil
	}
	if s.active != nil {
		targets = append(targets, s.active)
	}
	return sealed, targets, stale
}

// finalStep is the next call that brings the targets closer to showing
// the final pieces, and the index of the piece or target it concerns; nil
// when they show them all. Those before from are known to show theirs, so
// that a long answer's delivery costs linear time.
func finalStep(pieces []piece, targets []*message, from int) (*op, int) {
	i := from
	for i < len(pieces) && i < len(targets) && targets[i].shown == pieces[i].text {
		i++
	}
	switch {
	case i < len(pieces) && i < len(targets):
		return &op{kind: opEdit, msg: targets[i], text: pieces[i].text, p: pieces[i]}, i
	case i < len(pieces):
		return &op{kind: opSend, text: pieces[i].text, p: pieces[i]}, i
	case i < len(targets):
		return &op{kind: opDelete, msg: targets[i]}, i
	}
	return nil, i
}

// finish lays the final text f out over the messages and sends, edits and
// deletes until the chat shows it. f is laid out once, and again only when
// the messages it follows change.
func (d *Delivery) finish(ctx context.Context, f string) error {
	if d.beforeFinal != nil && f != "" {
		d.beforeFinal(d.screen.ids())
	}
	sealed, targets, stale := finalTargets(d.screen, f)
	d.screen = screen{sealed: sealed}
	for _, m := range stale {
		d.remove(ctx, m)
	}
	attempts, from := 0, 0
	var outage platform.Backoff
	// notDelivered leaves the messages as they are (sealed) and says why
	// the final text is not out.
	notDelivered := func(cause error) error {
		d.screen.sealed = append(d.screen.sealed, targets...)
		return fmt.Errorf("%w: %w", ErrNotDelivered, cause)
	}
	pieces := d.shape.layout(f, d.screen.sealed, d.shape.caps.MaxLength)
	for {
		o, i := finalStep(pieces, targets, from)
		from = i
		if o == nil {
			for j, m := range targets {
				m.record(pieces[j].text, pieces[j], f)
			}
			d.screen.sealed = append(d.screen.sealed, targets...)
			d.seal(ctx)
			return nil
		}
		err := d.call(ctx, o)
		if err != nil && ctx.Err() != nil {
			return notDelivered(ctx.Err())
		}
		switch {
		case err == nil:
			attempts = 0
			outage.Reset()
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
		case errors.Is(err, platform.ErrUnavailable):
			// The platform is down: the answer waits for it, until
			// shutdown, rather than be given up after a few tries.
			wait := outage.Next()
			d.log().Warn("the platform is unavailable; the final answer waits", "err", err, "retry_in", wait)
			if !platform.Sleep(ctx, wait) {
				return notDelivered(err)
			}
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
			attempts, from = 0, 0
			targets = d.giveUpEditing(ctx, targets, i, pieces, f)
			pieces = d.shape.layout(f, d.screen.sealed, d.shape.caps.MaxLength)
			continue
		case attempts >= maxAttempts:
			return notDelivered(err)
		}
		if !platform.Sleep(ctx, backoff(d.opts.RetryDelay, attempts)) {
			return notDelivered(ctx.Err())
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
	d.screen.sealed = append(d.screen.sealed, targets[:i]...)
	m := targets[i]
	m.dead = true
	if m.from == pieces[i].start && m.upTo != "" && strings.HasPrefix(f, m.upTo) && len(m.upTo) > m.from {
		d.screen.sealed = append(d.screen.sealed, m)
	} else {
		d.remove(ctx, m)
	}
	return targets[i+1:]
}

// remove deletes a message that is no longer part of the answer, if the
// platform lets it; a message that stays is left out of the outcome.
func (d *Delivery) remove(ctx context.Context, m *message) {
	d.retried(ctx, "deleting a stale message", func(ctx context.Context) error {
		return d.call(ctx, &op{kind: opDelete, msg: m})
	})
}

// seal makes the answer's messages final where the platform keeps them
// open while they are written (platform.Sealer); the text they show is
// already the final one.
func (d *Delivery) seal(ctx context.Context) {
	sealer, ok := d.ad.(platform.Sealer)
	if !ok {
		return
	}
	for _, m := range d.screen.sealed {
		d.retried(ctx, "sealing a message", func(ctx context.Context) error {
			s := spend{class: platform.Messages, cost: 1}
			calls := 0
			err := d.gate.do(ctx, s, func(ctx context.Context) (err error) {
				calls, err = sealer.Seal(ctx, d.target, m.id)
				return err
			})
			if err == nil && calls == 0 {
				d.gate.refund(s, 1) // it was not open: no call was made
			}
			return err
		})
	}
}

// retried makes a call of the final delivery that the answer's text does
// not depend on, trying it again after a failure, and logs when it gives
// up.
func (d *Delivery) retried(ctx context.Context, what string, call func(context.Context) error) {
	for attempt := 1; ; attempt++ {
		err := call(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		if attempt >= maxAttempts {
			d.log().Warn(what+" failed", "err", err)
			return
		}
		if !d.rateLimited(err) && !platform.Sleep(ctx, backoff(d.opts.RetryDelay, attempt)) {
			return
		}
	}
}

// call makes one call of the final delivery, when the chat's gate lets it,
// and records its success.
func (d *Delivery) call(ctx context.Context, o *op) error {
	// The final text keeps nothing back: a marker is skipped before text
	// is delayed.
	return d.gate.do(ctx, spend{class: platform.Messages, cost: 1}, func(ctx context.Context) error {
		switch o.kind {
		case opSend:
			var id string
			err := d.keep(ctx, "platform.send", o.text, func(ctx context.Context) (err error) {
				id, err = d.ad.Send(ctx, d.target, o.text)
				return err
			})
			if err != nil {
				return err
			}
			d.out.Sends++
			o.msg = &message{id: id, shown: o.text}
			d.shownNow()
		case opEdit:
			if err := d.keep(ctx, "platform.edit", o.text, func(ctx context.Context) error { return d.ad.Edit(ctx, d.target, o.msg.id, o.text) }); err != nil {
				return err
			}
			d.out.Edits++
			o.msg.shown = o.text
			d.shownNow()
		case opDelete:
			if err := platformCall(ctx, "platform.delete", func(ctx context.Context) error { return d.ad.Delete(ctx, d.target, o.msg.id) }); err != nil {
				return err
			}
			d.out.Deletes++
		}
		return nil
	})
}
