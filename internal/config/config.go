// Package config loads Herald's settings: environment variables first, then
// config.yaml, then built-in defaults. It accepts Hermes's key names so a
// Hermes configuration works unchanged, and names the variable or file key
// behind every problem it reports.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the effective configuration.
type Config struct {
	// Home holds config.yaml, .env and all state.
	Home string
	// File is the config.yaml path that was read (it may not exist).
	File string
	// HTTPAddr is the address of Herald's own HTTP listener.
	HTTPAddr string
	// LogLevel is the minimum level logged, and LogFormat "text" or "json".
	LogLevel  slog.Level
	LogFormat string
	// OTLP is the OpenTelemetry collector that receives the turns' traces.
	OTLP OTLP

	// Proxy is the Hermes API server the gateway relays to.
	Proxy Proxy
	// Agent is the OpenAI-compatible model server used without a proxy.
	Agent Agent
	// ConnectTimeout bounds connecting to the agent server.
	ConnectTimeout time.Duration
	// IdleTimeout bounds the time between two reads from the agent server.
	IdleTimeout time.Duration
	// MaxEventBytes bounds one event of the agent server's stream (or its
	// whole answer when it answers with JSON).
	MaxEventBytes int
	// AgentUnreadyAfter is how many agent server failures in a row make
	// /readyz answer 503.
	AgentUnreadyAfter int
	// AgentCheckInterval is how often a failing agent server is checked.
	AgentCheckInterval time.Duration
	// MaxAnswerBytes bounds the answer text delivered to a chat; beyond
	// it the answer is cut with a note.
	MaxAnswerBytes int
	// KeepThinking keeps the agent's <think> reasoning in the transcript;
	// by default it holds the answer as the user saw it.
	KeepThinking bool

	// HTTP bounds what clients may hold of Herald's listener.
	HTTP HTTPLimits
	// Database is the PostgreSQL database that holds the state instead of
	// $HERALD_HOME/state.db.
	Database Database
	// Delivery is the API through which the agent's own messages (its
	// scheduled jobs' reports) are delivered.
	Delivery Delivery

	// Streaming controls progressive delivery of answers.
	Streaming Streaming
	// GroupSessionsPerUser gives each user of a group a session of their own.
	GroupSessionsPerUser bool
	// ThreadSessionsPerUser gives each user of a thread a session of their own.
	ThreadSessionsPerUser bool
	// BusyInputMode says what a message does while a turn runs: interrupt,
	// queue or steer.
	BusyInputMode string
	// BusyAck tells the user what a message sent while a turn runs does.
	BusyAck bool
	// ResetTriggers are messages that start a new conversation.
	ResetTriggers []string
	// SessionReset starts conversations afresh by themselves; see
	// SessionResetMode.
	SessionReset SessionReset

	// ShutdownGrace is how long running turns may finish on shutdown.
	ShutdownGrace time.Duration
	// Access is who may talk to the agent on every platform.
	Access Access
	// PlatformAccess is who may talk to the agent on one platform, by name.
	PlatformAccess map[string]Access
	// UnauthorizedDM says what an unknown user's DM gets: ignore, or pair
	// (a one-time code); see PairsUnknownDMs.
	UnauthorizedDM string

	// Platforms are the registered platforms' settings, by name.
	Platforms map[string]Section
	// NoTyping names the platforms whose typing indicator is off.
	NoTyping []string
	// QuietRestarts names the platforms whose chats are not told when a
	// restart or shutdown cut an answer short.
	QuietRestarts []string
	// PlatformStreaming overrides streaming.enabled for one platform
	// (display.platforms.<name>.streaming).
	PlatformStreaming map[string]bool
	// ToolProgress is what chats show of the agent's tools (one of the
	// ToolProgress* modes); PlatformToolProgress sets it for one platform
	// (display.platforms.<name>.tool_progress).
	ToolProgress         string
	PlatformToolProgress map[string]string

	// Warnings are what is odd in the configuration without being wrong:
	// config.yaml keys that neither Herald nor Hermes knows.
	Warnings []string

	effective []Effective
}

// HTTPLimits bound the connections and event streams clients may hold of
// Herald's HTTP listener, and how long a request may take.
type HTTPLimits struct {
	MaxConnections, MaxConnectionsPerClient   int
	MaxEventStreams, MaxEventStreamsPerClient int
	ReadTimeout, WriteTimeout, IdleTimeout    time.Duration
}

// Database is a PostgreSQL database for the state.
type Database struct {
	// URL is empty for the embedded SQLite store.
	URL string
	// MaxConnections bounds the connection pool.
	MaxConnections int
	// LeaseTTL is how long a replica's lease on the platform connections
	// lasts without a renewal: how soon a replica standing by takes over.
	LeaseTTL time.Duration
	// AdvertiseURL is how the other replicas reach this one's listener;
	// empty means http://<http.addr>.
	AdvertiseURL string
}

// ReplicaURL is the URL the other replicas reach this one's listener at:
// database.advertise_url, else its own address.
func (c *Config) ReplicaURL() string {
	if c.Database.AdvertiseURL != "" {
		return c.Database.AdvertiseURL
	}
	return "http://" + c.HTTPAddr
}

// Delivery is the delivery API's configuration.
type Delivery struct {
	// Token is the bearer token the API requires; empty turns it off.
	Token string
	// URL is where herald deliver sends its requests; empty means Herald's
	// own listener.
	URL string
	// AllowAnyChat lets deliveries go to any chat, not only to the home
	// chats and those messages came from.
	AllowAnyChat bool
}

// DeliveryURL is the base URL herald deliver posts to: delivery.url, or
// Herald's own listener.
func (c *Config) DeliveryURL() string {
	if c.Delivery.URL != "" {
		return c.Delivery.URL
	}
	return c.LocalURL()
}

// LocalURL is Herald's own listener as a client on the same host reaches
// it: a listener on every interface (0.0.0.0, [::] or no host) is asked
// on loopback.
func (c *Config) LocalURL() string {
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return "http://" + c.HTTPAddr
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.To4() != nil && ip.IsUnspecified()):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// OTLP is where traces go, by OTLP over HTTP, under the OpenTelemetry
// variables' names: the collector's base URL, or the traces' own URL.
type OTLP struct {
	Endpoint       string
	TracesEndpoint string
}

// TracesURL is where the turns' traces are sent: the traces' own URL as it
// is, else the collector's /v1/traces, as the OpenTelemetry specification
// has it; "" when neither is set, and tracing is off.
func (c *Config) TracesURL() string {
	switch {
	case c.OTLP.TracesEndpoint != "":
		return c.OTLP.TracesEndpoint
	case c.OTLP.Endpoint != "":
		return c.OTLP.Endpoint + "/v1/traces"
	}
	return ""
}

// Proxy is the Hermes API server (gateway proxy mode).
type Proxy struct {
	URL   string // without a trailing slash; empty when not configured
	Key   string // bearer key; empty sends no Authorization header
	Model string
}

// Agent is an OpenAI-compatible model server for the direct backend.
type Agent struct {
	BaseURL      string
	APIKey       string
	Model        string
	SystemPrompt string
}

// Access is an allowlist.
type Access struct {
	AllowAll bool
	Users    []string // platform user ids; "*" also allows everyone
	// GroupUsers may talk in group chats too; every member of GroupChats
	// may ("*": of every group).
	GroupUsers, GroupChats []string
}

// Streaming holds the streaming.* settings.
type Streaming struct {
	Enabled         bool
	Transport       string // auto, draft, edit or off
	EditInterval    time.Duration
	BufferThreshold int
	Cursor          string
}

// Effective is one setting's value and where it came from, for `herald check`.
type Effective struct {
	Key    string // config.yaml key, or the variable name for env-only settings
	Env    string // environment variable, if any
	Value  string
	Origin string // "env NAME", "FILE: key", "FILE: NAME" (.env) or "default"
	Secret bool
	Reload bool // see Setting.Reload
}

// SessionReset holds the session_reset.* settings.
type SessionReset struct {
	Mode        string // none, idle, daily or both
	IdleMinutes int
	AtHour      int
	Notify      bool
	// Quiet names the platforms not told even when Notify is on.
	Quiet []string
}

// SessionResetMode is session_reset.mode, or where it is left unset, the
// mode that the idle minutes or the hour set for it choose: a user who
// sets SESSION_IDLE_MINUTES means conversations to reset when idle.
func (c *Config) SessionResetMode() string {
	if c.origin("session_reset.mode") != "default" {
		return c.SessionReset.Mode
	}
	idle := c.origin("session_reset.idle_minutes") != "default"
	daily := c.origin("session_reset.at_hour") != "default"
	switch {
	case idle && daily:
		return "both"
	case idle:
		return "idle"
	case daily:
		return "daily"
	}
	return c.SessionReset.Mode
}

// Effective lists every setting's value and origin, in table order.
func (c *Config) Effective() []Effective { return c.effective }

// origin is where a setting's value came from ("default" when nowhere),
// by its key or variable.
func (c *Config) origin(name string) string {
	for _, e := range c.effective {
		if e.Key == name || (e.Env != "" && e.Env == name) {
			return e.Origin
		}
	}
	return "default"
}

// PairsUnknownDMs tells whether an unknown user's DM on a platform gets a
// pairing code: as unauthorized_dm_behavior says where it is set; left
// unset, as Hermes decides, unless the platform has an allowlist (its own
// or GATEWAY_ALLOWED_USERS), whose owner chose who may talk.
func (c *Config) PairsUnknownDMs(platform string) bool {
	if c.origin("unauthorized_dm_behavior") != "default" {
		return c.UnauthorizedDM == "pair"
	}
	p := c.PlatformAccess[platform]
	return len(c.Access.Users) == 0 && len(p.Users) == 0 && len(p.GroupUsers) == 0 && len(p.GroupChats) == 0
}

// Backend names the backend the configuration selects: "hermes" with a
// proxy URL, "openai" with a model server base URL, "" with neither.
func (c *Config) Backend() string {
	switch {
	case c.Proxy.URL != "":
		return "hermes"
	case c.Agent.BaseURL != "":
		return "openai"
	}
	return ""
}

// Options says where to load from.
type Options struct {
	// Env is the environment; nil means the process environment.
	Env *Env
	// File overrides $HERALD_HOME/config.yaml (the --config flag); it must exist.
	File string
	// RequireBackend reports a missing agent server as a problem, as `run` and `check` need.
	RequireBackend bool
}

// Load reads the configuration and validates it. It reports every problem
// found, not only the first, each naming its variable or file and key.
// With an *Error it also returns the Config as far as it could be read,
// for herald check to show beside the problems; nothing may run on it.
func Load(opts Options) (*Config, error) {
	env := opts.Env
	if env == nil {
		env = ProcessEnv()
	}
	c := &Config{PlatformAccess: map[string]Access{}, Platforms: map[string]Section{}, PlatformStreaming: map[string]bool{}, PlatformToolProgress: map[string]string{}}
	var errs []error

	home, err := homeDir(env)
	if err != nil {
		return nil, err
	}
	c.Home = home
	if err := checkHomePrivate(home); err != nil {
		return nil, err
	}
	if err := env.LoadFile(filepath.Join(home, ".env")); err != nil {
		errs = append(errs, err)
	}

	c.File = opts.File
	if c.File == "" {
		c.File = filepath.Join(home, "config.yaml")
	}
	root, err := readYAML(c.File, opts.File != "")
	if err != nil {
		return nil, err
	}

	all := c.settings()
	access := map[string]*Access{}
	typing, restartNotices := map[string]*bool{}, map[string]*bool{}
	for _, p := range registered() {
		section := p.new()
		c.Platforms[p.name] = section
		access[p.name], typing[p.name], restartNotices[p.name] = &Access{}, new(bool), new(bool)
		all = append(all, section.Settings()...)
		all = append(all, accessSettings(p.name, access[p.name])...)
		all = append(all, platformSwitches(p.name, typing[p.name], restartNotices[p.name])...)
	}
	for _, s := range all {
		value, origin := s.Default, "default"
		v, key, err := s.fromFile(root)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", c.File, key, err))
			continue
		}
		if ev, o, ok := fromEnv(env, s.Env); ok && (key == "" || !s.FileFirst) {
			value, origin = ev, o
		} else if key != "" {
			value, origin = v, c.File+": "+key
		}
		shown, err := s.Set(value)
		if err != nil {
			if s.Secret && strings.Contains(err.Error(), strings.TrimSpace(value)) {
				// Never echo a secret, even a mistyped one.
				err = fmt.Errorf("the value (%d characters, not shown) is not valid", len(value))
			}
			errs = append(errs, fmt.Errorf("%s: %w", origin, err))
			continue
		}
		c.effective = append(c.effective, Effective{Key: s.name(), Env: s.Env, Value: shown, Origin: origin, Secret: s.Secret, Reload: s.Reload})
	}
	for name, a := range access {
		c.PlatformAccess[name] = *a
	}
	for name, on := range typing {
		if !*on {
			c.NoTyping = append(c.NoTyping, name)
		}
	}
	for name, on := range restartNotices {
		if !*on {
			c.QuietRestarts = append(c.QuietRestarts, name)
		}
	}

	errs = append(errs, c.readDisplayPlatforms(root)...)
	c.Warnings = unknownKeys(c.File, root, all)
	for _, p := range registered() {
		if err := c.Platforms[p.name].Check(c); err != nil {
			errs = append(errs, err)
		}
	}
	if opts.RequireBackend {
		errs = append(errs, c.checkBackend()...)
	}
	if len(errs) > 0 {
		return c, &Error{Problems: errs}
	}
	return c, nil
}

// Error lists every configuration problem found.
type Error struct {
	Problems []error
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  - " + p.Error()
	}
	return fmt.Sprintf("configuration has %d problem(s):\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

func (c *Config) checkBackend() []error {
	switch c.Backend() {
	case "":
		return []error{errors.New("no agent server configured: set GATEWAY_PROXY_URL (or gateway.proxy_url in config.yaml) " +
			"to relay to a Hermes API server, or HERALD_AGENT_BASE_URL (or agent.base_url) to talk to an OpenAI-compatible model server; " +
			"to try Herald without one first, run herald demo")}
	case "openai":
		if c.Agent.Model == "" {
			return []error{errors.New("agent.model (HERALD_AGENT_MODEL) is required with agent.base_url: name the model the server should run")}
		}
	}
	return nil
}

// IsLoopback reports whether a host:port address is on this machine only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func homeDir(env *Env) (string, error) {
	if v, _, ok := fromEnv(env, "HERALD_HOME"); ok {
		return filepath.Clean(v), nil
	}
	dir, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a home directory for ~/.herald; set HERALD_HOME: %w", err)
	}
	return filepath.Join(dir, ".herald"), nil
}

// checkHomePrivate refuses a HERALD_HOME, .env or config.yaml that other
// users may write to: whoever can replace the files chooses where answers
// and keys go, and the home's state holds the sessions and the Matrix
// encryption keys. A home that does not exist yet is created private by
// the app.
func checkHomePrivate(home string) error {
	for _, path := range []string{home, filepath.Join(home, ".env"), filepath.Join(home, "config.yaml")} {
		info, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("HERALD_HOME %s: %w", home, err)
		}
		if perm := info.Mode().Perm(); perm&0o002 != 0 {
			return fmt.Errorf("%s is writable by every user (mode %04o), who could change Herald's configuration and state: run chmod o-w %s, or choose a HERALD_HOME of your own", path, perm, path)
		}
	}
	return nil
}

// fromEnv reads a variable, treating a whitespace-only value as unset.
// Setters trim where surrounding spaces cannot be meant.
func fromEnv(env *Env, name string) (value, origin string, ok bool) {
	if name == "" {
		return "", "", false
	}
	v, origin, ok := env.Get(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", "", false
	}
	return v, origin, true
}
