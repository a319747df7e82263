package telegram

import (
	"context"
	"errors"
	"net/url"

	"github.com/go-telegram/bot"

	"github.com/herald-chat/herald/internal/platform"
)

// Diagnose implements platform.Diagnoser: the token (getMe), a webhook
// that would make polling fail (getWebhookInfo: Telegram refuses
// getUpdates while one is set), and a privacy mode that hides the group
// messages Herald is set to answer without a mention.
func (a *Adapter) Diagnose(ctx context.Context) []platform.Finding {
	me, err := a.bot.GetMe(ctx)
	where := "TELEGRAM_BOT_TOKEN"
	if a.opts.Account != "" {
		where = "TELEGRAM_ACCOUNTS (" + a.opts.Account + "=…)"
	}
	switch {
	case errors.Is(err, bot.ErrorUnauthorized) || errors.Is(err, bot.ErrorNotFound):
		return []platform.Finding{{Status: platform.Fail, Check: a.name + ": bot token", Detail: "Telegram refused the token: " + a.redact(err).Error(),
			Fix: "copy the token @BotFather gave into " + where + " (or ask it for a new one with /token)"}}
	case err != nil:
		return []platform.Finding{{Status: platform.Fail, Check: a.name + ": Bot API", Detail: "cannot be reached: " + a.redact(err).Error(),
			Fix: "check the network to " + a.opts.BaseURL + ", or TELEGRAM_PROXY"}}
	}
	findings := []platform.Finding{{Status: platform.OK, Check: a.name + ": bot token", Detail: "accepted: the bot is @" + me.Username}}
	webhook := platform.Finding{Status: platform.OK, Check: a.name + ": webhook", Detail: "none set: polling with getUpdates works"}
	switch info, err := a.bot.GetWebhookInfo(ctx); {
	case err != nil:
		webhook.Status, webhook.Detail = platform.Warn, "cannot be read: "+a.redact(err).Error()
		webhook.Fix = "run herald doctor again; polling fails while a webhook is set"
	case info.URL != "":
		webhook.Status, webhook.Detail = platform.Fail, "a webhook is set (to "+hostOf(info.URL)+"): Telegram refuses getUpdates while it is, so no message reaches Herald"
		webhook.Fix = "stop the program that set it, then delete it with the Bot API's deleteWebhook"
	}
	findings = append(findings, webhook)
	if !a.opts.RequireMention && !me.CanReadAllGroupMessages {
		findings = append(findings, platform.Finding{Status: platform.Warn, Check: a.name + ": privacy mode",
			Detail: "on: in groups the bot sees only commands, replies to it and mentions, though TELEGRAM_REQUIRE_MENTION is off",
			Fix:    "turn it off with @BotFather's /setprivacy (then remove and add the bot to each group), or set TELEGRAM_REQUIRE_MENTION=true"})
	}
	return findings
}

// hostOf is the host a URL names, enough to tell which program set a
// webhook without showing a secret path.
func hostOf(u string) string {
	if parsed, err := url.Parse(u); err == nil && parsed.Host != "" {
		return parsed.Host
	}
	return "an address"
}
