package slack

import (
	"context"
	"strings"

	"github.com/herald-chat/herald/internal/platform"
)

// Diagnose implements platform.Diagnoser: each token is of its kind (a
// bot token, xoxb-, and an app-level token, xapp-), Slack accepts the bot
// token (auth.test), and Socket Mode opens with the app token
// (apps.connections.open gives a connection URL; nothing connects to it).
func (a *Adapter) Diagnose(ctx context.Context) []platform.Finding {
	var findings []platform.Finding
	bot := platform.Finding{Status: platform.OK, Check: "slack: bot token"}
	switch auth, err := a.api.AuthTestContext(ctx); {
	case !strings.HasPrefix(a.opts.BotToken, "xoxb-"):
		bot.Status, bot.Detail = platform.Fail, "SLACK_BOT_TOKEN is not a bot token (xoxb-…)"
		bot.Fix = "copy the Bot User OAuth Token from the app's OAuth & Permissions page into SLACK_BOT_TOKEN"
	case err != nil:
		bot.Status, bot.Detail = platform.Fail, "auth.test: "+explain(err).Error()
		bot.Fix = "copy the Bot User OAuth Token from the app's OAuth & Permissions page into SLACK_BOT_TOKEN (reinstall the app if it was revoked)"
	default:
		bot.Detail = "accepted: the bot is " + auth.User + " in " + auth.Team
	}
	findings = append(findings, bot)
	socket := platform.Finding{Status: platform.OK, Check: "slack: Socket Mode", Detail: "opens with SLACK_APP_TOKEN"}
	switch _, _, err := a.api.StartSocketModeContext(ctx); {
	case !strings.HasPrefix(a.opts.AppToken, "xapp-"):
		socket.Status, socket.Detail = platform.Fail, "SLACK_APP_TOKEN is not an app-level token (xapp-…)"
		socket.Fix = "make an app-level token with the connections:write scope (Basic Information → App-Level Tokens) and set SLACK_APP_TOKEN to it"
	case err != nil:
		socket.Status, socket.Detail = platform.Fail, "apps.connections.open: "+explain(err).Error()
		socket.Fix = "turn on Socket Mode in the app's settings, and set SLACK_APP_TOKEN to an app-level token with connections:write"
	}
	return append(findings, socket)
}
