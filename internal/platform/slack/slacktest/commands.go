package slacktest

import (
	"fmt"
	"strings"
)

// SlashCommand is a slash command a user runs, for InjectSlashCommand.
type SlashCommand struct {
	// Command is the command with its slash, e.g. "/herald".
	Command string
	// Text is what the user typed after it.
	Text          string
	Channel, User string
}

// InjectSlashCommand delivers a slash command over Socket Mode, in a
// slash_commands envelope whose payload has the fields Slack sends to a
// command's handler (docs.slack.dev/interactivity/implementing-slash-commands,
// "The data your app receives"), and returns its trigger_id. The channel
// must have been added.
func (s *Server) InjectSlashCommand(c SlashCommand) (triggerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.channels[c.Channel]
	if cs == nil {
		panic(fmt.Sprintf("slacktest: InjectSlashCommand into unknown channel %q; add it with AddChannel", c.Channel))
	}
	s.knowUserLocked(c.User)
	name := cs.ch.Name
	if cs.kind() == "im" {
		name = "directmessage"
	}
	triggerID = s.newIDLocked("13345224609.738474920.")
	s.deliverLocked(&sockEvent{eventID: "", typ: "slash_commands", payload: obj{
		"token":                 verificationToken,
		"team_id":               s.TeamID,
		"team_domain":           strings.ToLower(s.opts.TeamName),
		"channel_id":            c.Channel,
		"channel_name":          name,
		"user_id":               c.User,
		"user_name":             s.users[c.User].Name,
		"command":               c.Command,
		"text":                  c.Text,
		"api_app_id":            s.AppID,
		"is_enterprise_install": "false",
		"response_url":          s.BaseURL + "/commands/" + s.TeamID + "/" + randomHex(8),
		"trigger_id":            triggerID,
	}})
	s.changes.Changed()
	return triggerID
}
