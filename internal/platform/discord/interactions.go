package discord

import (
	"context"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
)

// interactionPrefix marks a target's ReplyTo that is a slash command's
// interaction rather than a message.
const interactionPrefix = "interaction:"

// Discord's clocks for interactions
// (discord.com/developers/docs/interactions/receiving-and-responding#responding-to-an-interaction).
const (
	// interactionTokenLife: "Interaction tokens are valid for 15 minutes".
	interactionTokenLife = 15 * time.Minute
	// unansweredGrace is how long a deferred response waits for the
	// gateway's answer before it says the command was done (a /stop that
	// stopped an answer has none of its own: the stopped answer ends with
	// its notice).
	unansweredGrace = 10 * time.Second
)

// interactions are the slash commands waiting for their answer. Their
// tokens, which let anyone answer them for 15 minutes, are kept in memory
// only.
type interactions struct {
	mu      sync.Mutex
	pending map[string]*pendingInteraction
}

type pendingInteraction struct {
	i        *discordgo.Interaction
	at       time.Time
	answered bool
}

func newInteractions() *interactions {
	return &interactions{pending: map[string]*pendingInteraction{}}
}

// add keeps an interaction until its token expires.
func (p *interactions) add(i *discordgo.Interaction, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, pi := range p.pending {
		if now.Sub(pi.at) > interactionTokenLife {
			delete(p.pending, id)
		}
	}
	p.pending[i.ID] = &pendingInteraction{i: i, at: now}
}

// answer sends text as the answer to interaction id: the first completes
// the deferred response, the next are follow-ups. handled is false when
// the interaction is unknown or expired (after a restart): the text then
// goes to the channel as a message.
func (p *interactions) answer(ctx context.Context, s *discordgo.Session, id, text string, am *discordgo.MessageAllowedMentions) (m *discordgo.Message, handled bool, err error) {
	p.mu.Lock()
	pi := p.pending[id]
	if pi == nil || time.Since(pi.at) > interactionTokenLife {
		p.mu.Unlock()
		return nil, false, nil
	}
	first := !pi.answered
	pi.answered = true
	p.mu.Unlock()
	if first {
		m, err = s.InteractionResponseEdit(pi.i, &discordgo.WebhookEdit{Content: &text, AllowedMentions: am}, discordgo.WithContext(ctx))
	} else {
		m, err = s.FollowupMessageCreate(pi.i, true, &discordgo.WebhookParams{Content: text, AllowedMentions: am}, discordgo.WithContext(ctx))
	}
	if err != nil && first {
		p.mu.Lock()
		pi.answered = false
		p.mu.Unlock()
	}
	return m, true, err
}

// settle ends a deferred response that got no answer in time (a /stop
// whose stopped answer ends with its own notice, a user the gateway does
// not answer): the "thinking…" goes away.
func (p *interactions) settle(ctx context.Context, s *discordgo.Session, id string) error {
	p.mu.Lock()
	pi := p.pending[id]
	if pi == nil || pi.answered {
		p.mu.Unlock()
		return nil
	}
	pi.answered = true // an answer after this is a follow-up
	p.mu.Unlock()
	return s.InteractionResponseDelete(pi.i, discordgo.WithContext(ctx))
}

// onInteraction takes a slash command: it defers the response at once
// (Discord waits 3 seconds for one), and hands the command to the gateway
// as if typed, to be answered in the deferred response.
func (a *Adapter) onInteraction(i *discordgo.Interaction) {
	if i.Type != discordgo.InteractionApplicationCommand {
		return
	}
	ctx := a.runContext()
	word := i.ApplicationCommandData().Name
	if _, ok := chat.Command("/" + word); !ok {
		return
	}
	err := a.s.InteractionRespond(i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}, discordgo.WithContext(ctx))
	if err != nil {
		a.log.Warn("answering a slash command failed", "command", word, "error", a.redact(err))
		return
	}
	a.interactions.add(i, time.Now())
	// Whatever comes of it, the deferred response does not stay
	// "thinking…": the answer replaces it, or it goes.
	a.goWork(func() {
		if !platform.Sleep(ctx, unansweredGrace) {
			return
		}
		if err := a.interactions.settle(ctx, a.s, i.ID); err != nil && ctx.Err() == nil {
			a.log.Warn("completing a slash command failed", "command", word, "error", a.redact(err))
		}
	})
	user := i.User
	if i.Member != nil && i.Member.User != nil {
		user = i.Member.User
	}
	if user == nil {
		return
	}
	m := &discordgo.Message{
		ID: i.ID, ChannelID: i.ChannelID, GuildID: i.GuildID, Author: user, Member: i.Member,
		Content: "/" + word, Type: discordgo.MessageTypeDefault,
	}
	in, ok, err := a.inbound(ctx, m)
	if err != nil || !ok {
		if err != nil && ctx.Err() == nil {
			a.log.Error("a slash command could not be taken", "command", word, "error", err)
		}
		return
	}
	in.EventID = interactionPrefix + i.ID
	in.Mentioned = true
	to := chat.TargetOf(in.Source)
	to.ReplyTo = interactionPrefix + i.ID
	in.To = &to
	for err := a.handler(ctx, in); err != nil; err = a.handler(ctx, in) {
		if ctx.Err() != nil || !platform.Sleep(ctx, time.Second) {
			return
		}
	}
}
