package slack

import (
	"testing"
	"testing/synctest"

	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/platform/slack/slacktest"
)

// herald doctor's Slack checks against the fake: both tokens right; a
// bot token Slack does not know; the tokens swapped (each of the wrong
// kind).
func TestDiagnose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		right := w.options()
		found := platformtest.Diagnosis(w.adapter(right))
		platformtest.ExpectFinding(t, found, "slack: bot token", platform.OK, "accepted: the bot is ")
		platformtest.ExpectFinding(t, found, "slack: Socket Mode", platform.OK, "opens with SLACK_APP_TOKEN")

		unknown := right
		unknown.BotToken = "xoxb-1-a-token-slack-never-issued"
		platformtest.ExpectFinding(t, platformtest.Diagnosis(w.adapter(unknown)), "slack: bot token", platform.Fail, "invalid_auth")

		swapped := right
		swapped.BotToken, swapped.AppToken = right.AppToken, right.BotToken
		found = platformtest.Diagnosis(w.adapter(swapped))
		platformtest.ExpectFinding(t, found, "slack: bot token", platform.Fail, "not a bot token (xoxb-")
		platformtest.ExpectFinding(t, found, "slack: Socket Mode", platform.Fail, "not an app-level token (xapp-")
	})
}
