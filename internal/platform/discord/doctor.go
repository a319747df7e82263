package discord

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/bwmarrin/discordgo"

	"github.com/herald-chat/herald/internal/platform"
)

// The application flags that say the Message Content intent is switched
// on in the developer portal: the first for verified apps, the second for
// the others (discord.com/developers/docs/resources/application,
// "Application Flags").
const (
	flagMessageContent        = 1 << 18 // GATEWAY_MESSAGE_CONTENT
	flagMessageContentLimited = 1 << 19 // GATEWAY_MESSAGE_CONTENT_LIMITED
)

// Diagnose implements platform.Diagnoser: the token (GET /users/@me) and
// the Message Content intent Herald's gateway connection asks for, from
// the application's flags (GET /applications/@me) (without it Discord closes the connection with
// 4014).
func (a *Adapter) Diagnose(ctx context.Context) []platform.Finding {
	me, err := a.s.User("@me", discordgo.WithContext(ctx))
	switch {
	case tokenRefused(err):
		return []platform.Finding{{Status: platform.Fail, Check: "discord: bot token", Detail: "Discord refused the token (401 Unauthorized)",
			Fix: "copy the bot's token from the developer portal (Bot → Reset Token) into DISCORD_BOT_TOKEN"}}
	case err != nil:
		return []platform.Finding{{Status: platform.Fail, Check: "discord: API", Detail: "cannot be reached: " + err.Error(),
			Fix: "check the network to " + a.opts.BaseURL}}
	}
	findings := []platform.Finding{{Status: platform.OK, Check: "discord: bot token", Detail: "accepted: the bot is " + me.Username}}
	intent := platform.Finding{Status: platform.OK, Check: "discord: intents", Detail: "the Message Content intent is on"}
	var app struct{ Flags int }
	body, err := a.s.Request(http.MethodGet, discordgo.EndpointApplications+"/@me", nil, discordgo.WithContext(ctx))
	if err == nil {
		err = json.Unmarshal(body, &app)
	}
	switch {
	case err != nil:
		intent.Status, intent.Detail, intent.Fix = platform.Warn, "cannot be read: "+err.Error(), "run herald doctor again"
	case app.Flags&(flagMessageContent|flagMessageContentLimited) == 0:
		intent.Status, intent.Detail = platform.Fail, "the Message Content intent is off: Discord refuses Herald's gateway connection (4014)"
		intent.Fix = "in the developer portal, open the application, Bot → Privileged Gateway Intents, and turn on MESSAGE CONTENT INTENT"
	}
	return append(findings, intent)
}
