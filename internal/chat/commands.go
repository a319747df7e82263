package chat

import "strings"

// CommandInfo is one of the gateway's own commands: what is typed after
// "/" or "!", and what it does, for the help text and the menus of the
// platforms that have one (Telegram's setMyCommands).
type CommandInfo struct {
	Word string
	// Same names the command this one is another word for, if any.
	Same  string
	About string
	// Spelling is another way to type it, which menus do not list.
	Spelling string
}

// Commands is the gateway's command vocabulary, in the order help lists it.
var Commands = []CommandInfo{
	{Word: "new", About: "start a new conversation"},
	{Word: "reset", Same: "new", About: "start a new conversation"},
	{Word: "stop", About: "stop the answer being written"},
	{Word: "status", About: "session, agent server and uptime"},
	{Word: "sethome", About: "make this chat the home channel for the agent's own messages", Spelling: "set-home"},
	{Word: "help", About: "list the commands"},
}

// Command recognises the gateway's own commands, written with "/" or
// "!" (chat clients often swallow "/"), optionally addressed as
// /cmd@botname, and returns the command word in lower case. Other /words
// are not commands: they go to the agent.
func Command(text string) (string, bool) {
	text = strings.TrimSpace(text)
	if len(text) < 2 || (text[0] != '/' && text[0] != '!') {
		return "", false
	}
	word, _, _ := strings.Cut(text[1:], " ")
	word, _, _ = strings.Cut(word, "@")
	word = strings.ToLower(word)
	for _, c := range Commands {
		if word == c.Word || (c.Spelling != "" && word == c.Spelling) {
			return c.Word, true
		}
	}
	return "", false
}
