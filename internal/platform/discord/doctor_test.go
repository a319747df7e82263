package discord

import (
	"testing"

	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/discord/discordtest"
	"github.com/herald-chat/herald/internal/platform/platformtest"
)

// herald doctor's Discord checks against the fake: all well; a token
// Discord refuses; the Message Content intent off in the portal.
func TestDiagnose(t *testing.T) {
	diagnose := func(fake discordtest.Options, token string) map[string]platform.Finding {
		w := newWorld(t, fake)
		opts := w.options()
		if token != "" {
			opts.Token = token
		}
		a, err := New(opts, platformDeps(w, t))
		if err != nil {
			t.Fatal(err)
		}
		return platformtest.Diagnosis(a)
	}
	found := diagnose(discordtest.Options{}, "")
	platformtest.ExpectFinding(t, found, "discord: bot token", platform.OK, "accepted: the bot is ")
	platformtest.ExpectFinding(t, found, "discord: intents", platform.OK, "Message Content intent is on")

	platformtest.ExpectFinding(t, diagnose(discordtest.Options{}, "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gwrong.not-the-bots-token"),
		"discord: bot token", platform.Fail, "Discord refused the token (401")

	platformtest.ExpectFinding(t, diagnose(discordtest.Options{RefuseMessageContent: true}, ""),
		"discord: intents", platform.Fail, "the Message Content intent is off")
}
