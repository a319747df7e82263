package webchat

import (
	"fmt"
	"unicode/utf8"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/platform"
)

func init() { platform.Register(Name, func() platform.Settings { return new(Options) }) }

// Options are the web chat's settings (WEBCHAT_*, platforms.webchat.*).
type Options struct {
	// Serve serves the web chat on Herald's listener.
	Serve bool
	// Token, when set, must come with every API request as
	// "Authorization: Bearer <token>". Empty means no token.
	Token string
}

// Settings binds the web chat's settings to o.
func (o *Options) Settings() []config.Setting {
	return []config.Setting{
		{Key: "platforms.webchat.enabled", Env: "WEBCHAT_ENABLED", Default: "true", Set: config.Bool(&o.Serve), Category: config.Messaging,
			Description: "Serve the built-in web chat on HERALD_HTTP_ADDR", Prompt: "Enable the web chat"},
		{Key: "platforms.webchat.token", Env: "WEBCHAT_TOKEN", Secret: true, Set: config.Text(&o.Token), Category: config.Messaging,
			Description: fmt.Sprintf("Token the web chat requires; mandatory, of at least %d characters, when HERALD_HTTP_ADDR is not a loopback address (open http://host:8643/#token=…)", minTokenLength),
			Prompt:      "Web chat token"},
	}
}

// Check refuses a web chat open beyond this machine without a strong
// enough token.
func (o *Options) Check(shared *config.Config) error {
	if !o.Serve {
		return nil
	}
	return checkToken(*o, shared.HTTPAddr)
}

// minTokenLength is the shortest token accepted off loopback (our choice,
// as issue 12 suggests): 16 random characters are beyond guessing at the
// few wrong tokens a minute the web chat lets a client send (see lockout).
const minTokenLength = 16

// checkToken refuses a web chat beyond this machine without a token or
// with a short one. On loopback any token, or none, is the user's choice:
// only this machine can reach the listener.
func checkToken(o Options, addr string) error {
	switch {
	case config.IsLoopback(addr):
		return nil
	case o.Token == "":
		return fmt.Errorf("the web chat listens on %s, beyond this machine: set WEBCHAT_TOKEN (or platforms.webchat.token) to at least %d random characters, or a loopback HERALD_HTTP_ADDR, or WEBCHAT_ENABLED=false", addr, minTokenLength)
	case utf8.RuneCountInString(o.Token) < minTokenLength:
		return fmt.Errorf("WEBCHAT_TOKEN (platforms.webchat.token) is too short for a web chat listening on %s, beyond this machine: it needs at least %d characters (for example from `openssl rand -hex 16`)", addr, minTokenLength)
	}
	return nil
}

// Enabled tells whether the web chat is served.
func (o *Options) Enabled() bool { return o.Serve }

// OpenByDefault: anyone who reaches the web chat may talk to the agent
// unless WEBCHAT_ALLOWED_USERS says otherwise; the listener and the token
// are its access control.
func (o *Options) OpenByDefault() bool { return true }

// Adapter builds the web chat.
func (o *Options) Adapter(d platform.Deps) (platform.Adapter, error) { return New(*o, d) }
