package discordtest

import (
	"regexp"
	"slices"
)

// Mentions as Discord parses them from a message's content
// (discord.com/developers/docs/reference#message-formatting): <@id> and
// <@!id> for a user, <@&id> for a role, @everyone and @here. What pings is
// decided by allowed_mentions (discord.com/developers/docs/resources/
// message#allowed-mentions-object): without it, every mention in the
// content pings, and a reply pings the author of the message replied to;
// with it, only the types in parse and the ids in users and roles, and the
// replied-to author only with replied_user.

var mentionRE = regexp.MustCompile(`<@!?(\d{1,20})>|<@&(\d{1,20})>|@(everyone|here)`)

// token is one mention in a content: kind 'u' user, 'r' role, 'e'
// everyone or here (id "everyone" or "here").
type token struct {
	kind byte
	id   string
}

func mentionTokens(content string) []token {
	var out []token
	for _, m := range mentionRE.FindAllStringSubmatch(content, -1) {
		switch {
		case m[1] != "":
			out = append(out, token{'u', m[1]})
		case m[2] != "":
			out = append(out, token{'r', m[2]})
		default:
			out = append(out, token{'e', m[3]})
		}
	}
	return out
}

// userMentions are the user ids mentioned in a content, once each.
func userMentions(content string) []string {
	var out []string
	for _, t := range mentionTokens(content) {
		if t.kind == 'u' && !slices.Contains(out, t.id) {
			out = append(out, t.id)
		}
	}
	return out
}

// pingsLocked computes who a message pings. s.mu is held.
func (s *Server) pingsLocked(m *message) []string {
	a := m.allowed
	var out []string
	add := func(id string) {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for _, t := range mentionTokens(m.content) {
		switch {
		case a == nil:
			add(t.id)
		case t.kind == 'u' && (slices.Contains(a.Parse, "users") || slices.Contains(a.Users, t.id)):
			add(t.id)
		case t.kind == 'r' && (slices.Contains(a.Parse, "roles") || slices.Contains(a.Roles, t.id)):
			add(t.id)
		case t.kind == 'e' && slices.Contains(a.Parse, "everyone"):
			add(t.id)
		}
	}
	if m.replyKnown && (a == nil || a.RepliedUser) {
		if r := s.messages[m.replyTo]; r != nil && r.author.ID != m.author.ID {
			add(r.author.ID)
		}
	}
	return out
}

// mentionedLocked are the users, roles and everyone a message's
// mentions, mention_roles and mention_everyone show: for a user's
// message what it mentions, for the bot's what pings.
func (s *Server) mentionedLocked(m *message) (users []User, roles []string, everyone bool) {
	if m.author.ID != s.Bot.ID {
		for _, t := range mentionTokens(m.content) {
			switch t.kind {
			case 'r':
				if !slices.Contains(roles, t.id) {
					roles = append(roles, t.id)
				}
			case 'e':
				everyone = true
			}
		}
		return m.mentions, roles, everyone
	}
	for _, id := range s.pingsLocked(m) {
		switch {
		case id == "everyone" || id == "here":
			everyone = true
		case s.isRoleMention(m.content, id):
			roles = append(roles, id)
		default:
			u, ok := s.users[id]
			if !ok {
				u = User{ID: id, Username: "user" + id}
			}
			users = append(users, u)
		}
	}
	return users, roles, everyone
}

// isRoleMention tells whether id is mentioned as a role in content.
func (s *Server) isRoleMention(content, id string) bool {
	for _, t := range mentionTokens(content) {
		if t.kind == 'r' && t.id == id {
			return true
		}
	}
	return false
}
