package config

import (
	"fmt"
	"sort"
	"strings"
)

// Mark says what Herald makes of one of Hermes's gateway settings.
type Mark string

// The marks of the README's compatibility table.
const (
	// Same: the same name, values and default.
	Same Mark = "same"
	// OtherDefault: honoured, with another default, for the reason given.
	OtherDefault Mark = "honoured, another default"
	// NotRelay: the agent's own business, which a relay does not apply.
	NotRelay Mark = "not applicable to a relay"
	// NotYet: a gateway behaviour Herald does not have yet.
	NotYet Mark = "not honoured yet"
	// HeraldOnly marks Herald's own settings, which Hermes does not have.
	HeraldOnly Mark = "Herald only"
)

// Compat is one Hermes gateway setting, as Hermes documents it, and what
// Herald makes of it.
type Compat struct {
	Name    string // Hermes's environment variable or config.yaml key
	Mark    Mark
	Default string // Hermes's default, for Same and OtherDefault
	Why     string // one line, for every mark but Same
}

// isKey tells a config.yaml key from an environment variable.
func (c Compat) isKey() bool { return strings.ToUpper(c.Name) != c.Name }

// hermesSettings are Hermes's gateway settings (from its gateway/config.py,
// hermes_cli/config.py, the platform adapters and its reference of
// environment variables, as read in December 2026). A test holds each one
// to the registry: a name marked Same or OtherDefault is one Herald reads,
// with Hermes's default or another one; the others are not read.
var hermesSettings = []Compat{
	{Name: "GATEWAY_PROXY_URL", Mark: Same},
	{Name: "GATEWAY_PROXY_KEY", Mark: Same},
	{Name: "GATEWAY_ALLOWED_USERS", Mark: Same},
	{Name: "GATEWAY_ALLOW_ALL_USERS", Mark: Same, Default: "false"},
	{Name: "streaming.enabled", Mark: OtherDefault, Default: "false",
		Why: "answers stream into the chat while they are written, within each platform's rate budget"},

	{Name: "model", Mark: NotRelay, Why: "the agent server chooses the model"},
	{Name: "terminal", Mark: NotRelay, Why: "the agent's tools run on the agent server"},
}

// HermesSettings lists Hermes's gateway settings and Herald's own, each
// marked, for the README's compatibility table: Hermes's by name, then
// Herald's own by name.
func HermesSettings() []Compat {
	list := append([]Compat(nil), hermesSettings...)
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	hermes := map[string]bool{}
	for _, c := range hermesSettings {
		hermes[c.Name] = true
	}
	var own []Compat
	for _, s := range All() {
		if names := s.names(); !anyOf(names, hermes) {
			own = append(own, Compat{Name: names[0], Mark: HeraldOnly})
		}
	}
	sort.Slice(own, func(i, j int) bool { return own[i].Name < own[j].Name })
	return append(list, own...)
}

// names are the names a setting is read under: its variable, its key and
// the key's other spellings.
func (s Setting) names() []string {
	var names []string
	if s.Env != "" {
		names = append(names, s.Env)
	}
	if s.Key != "" {
		names = append(names, s.Key)
	}
	return append(names, s.AltKeys...)
}

func anyOf(names []string, set map[string]bool) bool {
	for _, n := range names {
		if set[n] {
			return true
		}
	}
	return false
}

// Differences says, one line each, where the effective configuration
// behaves otherwise than Hermes would with the same files: the settings
// left at a default that is not Hermes's.
func (c *Config) Differences() []string {
	byName := map[string]Effective{}
	for _, e := range c.effective {
		byName[e.Key] = e
		if e.Env != "" {
			byName[e.Env] = e
		}
	}
	var lines []string
	for _, h := range hermesSettings {
		if e, ok := byName[h.Name]; ok && h.Mark == OtherDefault && e.Origin == "default" {
			lines = append(lines, fmt.Sprintf("%s is %s here, %s in Hermes: %s", h.Name, shownDefault(e.Value), shownDefault(h.Default), h.Why))
		}
	}
	return lines
}

func shownDefault(v string) string {
	if v == "" {
		return "unset"
	}
	return fmt.Sprintf("%q", v)
}

// quietKey tells whether a config.yaml key is Hermes's own business (under
// a key marked NotRelay), which Herald passes over without a word.
func quietKey(path string) bool {
	for _, h := range hermesSettings {
		if h.isKey() && h.Mark == NotRelay && (path == h.Name || strings.HasPrefix(path, h.Name+".")) {
			return true
		}
	}
	return false
}

// closest is the known key nearest to key by edit distance.
func closest(key string, known []string) string {
	best, bestDist := "", -1
	for _, k := range known {
		if d := editDistance(key, k); bestDist < 0 || d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
