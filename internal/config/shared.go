package config

import (
	"fmt"
	"strings"
)

// settings are the settings every gateway has, bound to c's fields, in
// the order `herald check` lists them.
func (c *Config) settings() []Setting {
	return []Setting{
		{Key: "gateway.proxy_url", Env: "GATEWAY_PROXY_URL", Set: URL(&c.Proxy.URL), Category: Messaging,
			Description: "URL of the Hermes API server that runs the agent; messages are relayed there. Whitespace is unset, a trailing / is removed",
			Prompt:      "Hermes API server URL (e.g. http://192.168.1.100:8642)"},
		{Env: "GATEWAY_PROXY_KEY", Secret: true, Set: Text(&c.Proxy.Key), Category: Messaging,
			Description: "Bearer key for the Hermes API server; must equal API_SERVER_KEY there. No Authorization header without it",
			Prompt:      "Hermes API server key"},
		{Key: "gateway.model", Env: "HERALD_PROXY_MODEL", Default: "hermes-agent", Set: Text(&c.Proxy.Model), Category: Messaging, Advanced: true,
			Description: "Model name sent to the Hermes API server", Prompt: "Model name"},
		{Key: "agent.base_url", Env: "HERALD_AGENT_BASE_URL", Set: URL(&c.Agent.BaseURL), Category: Provider,
			Description: "Base URL of an OpenAI-compatible model server (Ollama, vLLM, llama.cpp, OpenAI), used when no proxy URL is set, e.g. http://127.0.0.1:11434/v1",
			Prompt:      "Model server base URL (e.g. http://127.0.0.1:11434/v1)"},
		{Key: "agent.api_key", Env: "HERALD_AGENT_API_KEY", Secret: true, Set: Text(&c.Agent.APIKey), Category: Provider,
			Description: "API key for the model server", Prompt: "Model server API key"},
		{Key: "agent.model", Env: "HERALD_AGENT_MODEL", Set: Text(&c.Agent.Model), Category: Provider,
			Description: "Model name to ask the model server for", Prompt: "Model name"},
		{Key: "agent.system_prompt", Env: "HERALD_AGENT_SYSTEM_PROMPT", Set: Text(&c.Agent.SystemPrompt), Category: Provider, Advanced: true,
			Description: "System prompt sent with every request to the model server", Prompt: "System prompt"},
		{Key: "gateway.allowed_users", Env: "GATEWAY_ALLOWED_USERS", Set: List(&c.Access.Users, nil), Category: Messaging,
			Description: "Users allowed on every platform, comma-separated platform user ids; * allows everyone",
			Prompt:      "Allowed users"},
		{Key: "gateway.allow_all_users", Env: "GATEWAY_ALLOW_ALL_USERS", Default: "false", Set: Bool(&c.Access.AllowAll), Category: Messaging,
			Description: "true lets everyone on every platform talk to the agent; without an allowlist nobody is allowed",
			Prompt:      "Allow all users"},
		{Key: "unauthorized_dm_behavior", AltKeys: []string{"gateway.unauthorized_dm_behavior"}, Default: "pair", Set: Enum(&c.UnauthorizedDM, "ignore", "pair"),
			Description: "pair: an unknown user's DM gets a one-time pairing code for `herald pairing approve`; ignore: nothing. Left unset, a platform with an allowlist (its own or GATEWAY_ALLOWED_USERS) ignores, as in Hermes"},
		{Key: "gateway.shutdown_grace", Env: "HERALD_SHUTDOWN_GRACE", Default: "10s", Set: Duration(&c.ShutdownGrace), Category: General, Advanced: true,
			Description: "How long running turns may finish after SIGTERM before they are cancelled with a notice",
			Prompt:      "Shutdown grace period"},
		{Key: "gateway.connect_timeout", Env: "HERALD_CONNECT_TIMEOUT", Default: "10s", Set: PositiveDuration(&c.ConnectTimeout), Category: General, Advanced: true,
			Description: "How long to wait for a connection to the agent server", Prompt: "Connect timeout"},
		{Key: "gateway.idle_timeout", Env: "HERALD_IDLE_TIMEOUT", Default: "30m", Set: PositiveDuration(&c.IdleTimeout), Category: General, Advanced: true,
			Description: "How long the agent server may send nothing, keepalives included, before the turn fails; there is no overall deadline",
			Prompt:      "Idle-read timeout"},
		{Key: "gateway.max_event_bytes", Env: "HERALD_MAX_EVENT_BYTES", Default: "16777216", Set: Positive(&c.MaxEventBytes), Category: General, Advanced: true,
			Description: "Largest event (or line) of the agent server's stream, or its whole answer when it answers with JSON, in bytes; a bigger one fails the turn",
			Prompt:      "Largest agent event (bytes)"},
		{Key: "gateway.max_answer_bytes", Env: "HERALD_MAX_ANSWER_BYTES", Default: "1048576", Set: Positive(&c.MaxAnswerBytes), Category: General, Advanced: true,
			Description: "Longest answer delivered to a chat, in bytes of text; a longer one is cut there, with a note saying so, and the rest is not read",
			Prompt:      "Longest answer (bytes)"},
		{Key: "gateway.agent_unready_after", Env: "HERALD_AGENT_UNREADY_AFTER", Default: "3", Set: Positive(&c.AgentUnreadyAfter), Category: General, Advanced: true,
			Description: "Failures of the agent server in a row (turns, and the checks of gateway.agent_check_interval) after which /readyz answers 503; one answer makes it ready again",
			Prompt:      "Agent failures before unready"},
		{Key: "gateway.agent_check_interval", Env: "HERALD_AGENT_CHECK_INTERVAL", Default: "30s", Set: PositiveDuration(&c.AgentCheckInterval), Category: General, Advanced: true,
			Description: "How often the agent server is checked (GET /health, or /models on a model server) while it fails; it is also checked once at start",
			Prompt:      "Agent check interval"},
		{Key: "transcript.keep_thinking", Default: "false", Set: Bool(&c.KeepThinking),
			Description: "Keep the agent's <think> reasoning in the transcript, which goes back to a model server with each turn; by default it holds the answer as the user saw it, and chats never show the reasoning"},
		{Key: "http.addr", Env: "HERALD_HTTP_ADDR", Default: "127.0.0.1:8643", Set: Addr(&c.HTTPAddr), Category: General,
			Description: "Address of Herald's own HTTP listener: web chat, /healthz, /readyz, /metrics",
			Prompt:      "Listen address"},
		{Key: "http.max_connections", Env: "HERALD_HTTP_MAX_CONNECTIONS", Default: "1024", Set: Positive(&c.HTTP.MaxConnections), Category: General, Advanced: true,
			Description: "Most connections Herald's HTTP listener holds at once; beyond, new ones get 503", Prompt: "Most HTTP connections"},
		{Key: "http.max_connections_per_client", Env: "HERALD_HTTP_MAX_CONNECTIONS_PER_CLIENT", Default: "64", Set: Positive(&c.HTTP.MaxConnectionsPerClient), Category: General, Advanced: true,
			Description: "Most connections one client address may hold; beyond, new ones get 503", Prompt: "Most HTTP connections per client"},
		{Key: "http.max_event_streams", Env: "HERALD_HTTP_MAX_EVENT_STREAMS", Default: "512", Set: Positive(&c.HTTP.MaxEventStreams), Category: General, Advanced: true,
			Description: "Most web chat event streams open at once; beyond, new ones get 503", Prompt: "Most event streams"},
		{Key: "http.max_event_streams_per_client", Env: "HERALD_HTTP_MAX_EVENT_STREAMS_PER_CLIENT", Default: "16", Set: Positive(&c.HTTP.MaxEventStreamsPerClient), Category: General, Advanced: true,
			Description: "Most web chat event streams one client address may hold open; beyond, new ones get 503", Prompt: "Most event streams per client"},
		{Key: "http.read_timeout", Env: "HERALD_HTTP_READ_TIMEOUT", Default: "30s", Set: PositiveDuration(&c.HTTP.ReadTimeout), Category: General, Advanced: true,
			Description: "Longest a client may take to send a request, headers and body", Prompt: "HTTP read timeout"},
		{Key: "http.write_timeout", Env: "HERALD_HTTP_WRITE_TIMEOUT", Default: "30s", Set: PositiveDuration(&c.HTTP.WriteTimeout), Category: General, Advanced: true,
			Description: "Longest Herald takes to write a response (event streams have their own heartbeat and idle rules)", Prompt: "HTTP write timeout"},
		{Key: "http.idle_timeout", Env: "HERALD_HTTP_IDLE_TIMEOUT", Default: "60s", Set: PositiveDuration(&c.HTTP.IdleTimeout), Category: General, Advanced: true,
			Description: "Longest a kept-alive connection may wait for its next request", Prompt: "HTTP idle timeout"},
		{Key: "log.level", Env: "HERALD_LOG_LEVEL", Default: "info", Category: General, Advanced: true,
			Description: "Log level: debug, info, warn or error", Prompt: "Log level",
			Set: func(v string) error {
				if err := c.LogLevel.UnmarshalText([]byte(strings.TrimSpace(v))); err != nil {
					return fmt.Errorf("expected debug, info, warn or error, got %q", v)
				}
				return nil
			}},
		{Key: "streaming.enabled", Default: "true", Set: Bool(&c.Streaming.Enabled),
			Description: "Stream answers into the chat while they are written"},
		{Key: "streaming.transport", Default: "auto", Set: Enum(&c.Streaming.Transport, "auto", "draft", "edit", "off"),
			Description: "auto (drafts where the chat has them, else edits), draft, edit or off"},
		{Key: "streaming.edit_interval", Default: "0.8", Set: Duration(&c.Streaming.EditInterval),
			Description: "Seconds between two intermediate edits of an answer, as in Hermes; the platform's rate-limit budget may space them further"},
		{Key: "streaming.buffer_threshold", Default: "24", Set: Positive(&c.Streaming.BufferThreshold),
			Description: "Characters of new text that trigger an intermediate edit before the interval has passed"},
		{Key: "streaming.cursor", Default: " ▉", Set: Raw(&c.Streaming.Cursor),
			Description: "Shown at the end of intermediate edits"},
		{Key: "display.tool_progress", Env: "HERMES_TOOL_PROGRESS_MODE", Default: ToolProgressAll, Set: toolProgress(&c.ToolProgress), Category: General, Advanced: true,
			Prompt:      "Tool progress",
			Description: "What the chat shows of the agent's tools while it works: off, new (a tool's line unless the same tool ran just before), all, verbose (as all: the relay is given no arguments) or log (Herald's log only); display.platforms.<name>.tool_progress sets it for one platform"},
		{Key: "group_sessions_per_user", Default: "true", Set: Bool(&c.GroupSessionsPerUser),
			Description: "Each user of a group has a session of their own"},
		{Key: "thread_sessions_per_user", Default: "false", Set: Bool(&c.ThreadSessionsPerUser),
			Description: "Each user of a thread has a session of their own"},
		{Key: "display.busy_input_mode", Env: "HERMES_GATEWAY_BUSY_INPUT_MODE", Default: "interrupt", Set: Enum(&c.BusyInputMode, "interrupt", "queue", "steer"),
			Category: General, Prompt: "Busy input mode",
			Description: "A message during a running turn interrupts it, waits its turn (queue), or is handed to the running turn (steer: the agent reads it after its next tool call, where the agent server takes steering; otherwise it waits its turn)"},
	}
}

// homeSetting documents HERALD_HOME, which Load reads before anything
// else: it says where config.yaml and .env are.
var homeSetting = Setting{Env: "HERALD_HOME", Category: General,
	Description: "Directory for config.yaml, .env and all state (default ~/.herald)", Prompt: "Herald home directory"}
