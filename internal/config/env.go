package config

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/joho/godotenv"
)

// Category groups environment variables as Hermes does.
type Category string

// The categories Hermes uses for its optional environment variables.
const (
	Messaging Category = "messaging"
	Provider  Category = "provider"
	Setting   Category = "setting"
	Tool      Category = "tool"
)

// Var describes one environment variable the program reads.
type Var struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Prompt      string   `json:"prompt"`
	URL         string   `json:"url,omitempty"`
	Secret      bool     `json:"secret"`
	Category    Category `json:"category"`
	Advanced    bool     `json:"advanced"`
}

// registry is every environment variable Herald reads. Env.Get refuses a name
// that is not here, and a test checks that no other code reads the environment.
var registry = []Var{
	{Name: "HERALD_HOME", Description: "Directory for config.yaml, .env and all state (default ~/.herald)", Prompt: "Herald home directory", Category: Setting},
	{Name: "HERALD_HTTP_ADDR", Description: "Address of Herald's own HTTP listener: health, readiness, metrics, web chat (default 127.0.0.1:8643)", Prompt: "Listen address", Category: Setting},
	{Name: "HERALD_LOG_LEVEL", Description: "Log level: debug, info, warn or error (default info)", Prompt: "Log level", Category: Setting, Advanced: true},
	{Name: "GATEWAY_PROXY_URL", Description: "URL of the Hermes API server that runs the agent; messages are relayed there", Prompt: "Hermes API server URL (e.g. http://192.168.1.100:8642)", Category: Messaging},
	{Name: "GATEWAY_PROXY_KEY", Description: "Bearer key for the Hermes API server; must equal API_SERVER_KEY there", Prompt: "Hermes API server key", Secret: true, Category: Messaging},
	{Name: "HERALD_PROXY_MODEL", Description: "Model name sent to the Hermes API server (default hermes-agent)", Prompt: "Model name", Category: Messaging, Advanced: true},
	{Name: "HERALD_CONNECT_TIMEOUT", Description: "How long to wait for a connection to the agent server (default 10s)", Prompt: "Connect timeout", Category: Setting, Advanced: true},
	{Name: "HERALD_IDLE_TIMEOUT", Description: "How long the agent server may send nothing, keepalives included, before the turn fails (default 30m)", Prompt: "Idle-read timeout", Category: Setting, Advanced: true},
	{Name: "HERALD_AGENT_BASE_URL", Description: "Base URL of an OpenAI-compatible model server (Ollama, vLLM, llama.cpp, OpenAI), used when no proxy URL is set", Prompt: "Model server base URL (e.g. http://127.0.0.1:11434/v1)", Category: Provider},
	{Name: "HERALD_AGENT_API_KEY", Description: "API key for the model server", Prompt: "Model server API key", Secret: true, Category: Provider},
	{Name: "HERALD_AGENT_MODEL", Description: "Model name to ask the model server for", Prompt: "Model name", Category: Provider},
	{Name: "HERALD_SHUTDOWN_GRACE", Description: "How long running turns may finish after SIGTERM before they are cancelled with a notice (default 10s)", Prompt: "Shutdown grace period", Category: Setting, Advanced: true},
	{Name: "GATEWAY_ALLOWED_USERS", Description: "Users allowed on every platform, comma-separated platform user ids; * allows everyone", Prompt: "Allowed users", Category: Messaging},
	{Name: "GATEWAY_ALLOW_ALL_USERS", Description: "true lets everyone on every platform talk to the agent (default: nobody, unless listed)", Prompt: "Allow all users", Category: Messaging},
	{Name: "WEBCHAT_ENABLED", Description: "Serve the built-in web chat on HERALD_HTTP_ADDR (default true)", Prompt: "Enable the web chat", Category: Messaging},
	{Name: "WEBCHAT_TOKEN", Description: "Token the web chat requires; mandatory when HERALD_HTTP_ADDR is not a loopback address", Prompt: "Web chat token", Secret: true, Category: Messaging},
	{Name: "HERALD_AGENT_SYSTEM_PROMPT", Description: "System prompt sent with every request to the model server", Prompt: "System prompt", Category: Provider, Advanced: true},
}

// Platforms are the platforms Herald knows; each has its own allowlist variables.
var Platforms = []string{"webchat", "matrix", "telegram", "discord", "slack"}

func init() {
	for _, p := range Platforms {
		upper := strings.ToUpper(p)
		registry = append(registry,
			Var{Name: upper + "_ALLOWED_USERS", Description: "Users allowed on " + p + ", comma-separated user ids; * allows everyone", Prompt: "Allowed " + p + " users", Category: Messaging},
			Var{Name: upper + "_ALLOW_ALL_USERS", Description: "true lets everyone on " + p + " talk to the agent", Prompt: "Allow all " + p + " users", Category: Messaging},
		)
	}
}

// Registry returns every environment variable Herald reads, sorted by name.
func Registry() []Var {
	vars := append([]Var(nil), registry...)
	sort.Slice(vars, func(i, j int) bool { return vars[i].Name < vars[j].Name })
	return vars
}

// Lookup returns the registry entry for name.
func Lookup(name string) (Var, bool) {
	for _, v := range registry {
		if v.Name == name {
			return v, true
		}
	}
	return Var{}, false
}

// Env reads registered variables: the process environment first, then a
// .env file, which never overrides the real environment.
type Env struct {
	lookup   func(string) (string, bool)
	file     map[string]string
	filePath string
}

// ProcessEnv reads the real process environment. It is the only place the
// program touches os.LookupEnv.
func ProcessEnv() *Env {
	return &Env{lookup: os.LookupEnv}
}

// MapEnv reads from a fixed map, for tests.
func MapEnv(m map[string]string) *Env {
	return &Env{lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

// LoadFile reads a .env file beneath the environment. A missing file is not an error.
func (e *Env) LoadFile(path string) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	m, err := godotenv.Parse(f)
	if err != nil {
		// The parser's message quotes the file, secrets included: say only where.
		return fmt.Errorf("%s: cannot be read as NAME=value lines (check quoting; values are not shown, they may be secrets)", path)
	}
	e.file, e.filePath = m, path
	return nil
}

// Get returns a registered variable's value and where it came from
// ("env NAME" or "FILE: NAME"). It panics on an unregistered name: that is a
// programming error the registry test catches.
func (e *Env) Get(name string) (value, origin string, ok bool) {
	if _, known := Lookup(name); !known {
		panic("config: environment variable " + name + " is not in the registry")
	}
	if v, ok := e.lookup(name); ok {
		return v, "env " + name, true
	}
	if v, ok := e.file[name]; ok {
		return v, e.filePath + ": " + name, true
	}
	return "", "", false
}
