package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// setting is one configuration value: its config.yaml key, its environment
// variable, its default, and how to apply it. set returns what is wrong with a
// value without saying where it came from; Load adds that.
type setting struct {
	key    string // config.yaml path; empty when only the environment sets it
	env    string // registered environment variable; empty when only config.yaml sets it
	def    string
	secret bool
	set    func(c *Config, v string) error
}

var settings = []setting{
	{key: "gateway.shutdown_grace", env: "HERALD_SHUTDOWN_GRACE", def: "10s", set: func(c *Config, v string) error {
		return setDuration(&c.ShutdownGrace, v, false)
	}},
	{key: "gateway.allowed_users", env: "GATEWAY_ALLOWED_USERS", set: func(c *Config, v string) error {
		c.Access.Users = splitList(v)
		return nil
	}},
	{key: "gateway.allow_all_users", env: "GATEWAY_ALLOW_ALL_USERS", def: "false", set: func(c *Config, v string) error {
		return setBool(&c.Access.AllowAll, v)
	}},
	{key: "unauthorized_dm_behavior", def: "ignore", set: func(c *Config, v string) error {
		return setEnum(&c.UnauthorizedDM, v, "ignore", "pair")
	}},
	{key: "platforms.webchat.enabled", env: "WEBCHAT_ENABLED", def: "true", set: func(c *Config, v string) error {
		return setBool(&c.Webchat.Enabled, v)
	}},
	{key: "platforms.webchat.token", env: "WEBCHAT_TOKEN", secret: true, set: func(c *Config, v string) error {
		c.Webchat.Token = strings.TrimSpace(v)
		return nil
	}},
	{key: "http.addr", env: "HERALD_HTTP_ADDR", def: "127.0.0.1:8643", set: func(c *Config, v string) error {
		return setAddr(&c.HTTPAddr, v)
	}},
	{key: "log.level", env: "HERALD_LOG_LEVEL", def: "info", set: func(c *Config, v string) error {
		if err := c.LogLevel.UnmarshalText([]byte(strings.TrimSpace(v))); err != nil {
			return fmt.Errorf("expected debug, info, warn or error, got %q", v)
		}
		return nil
	}},
	{key: "gateway.proxy_url", env: "GATEWAY_PROXY_URL", set: func(c *Config, v string) error {
		return setURL(&c.Proxy.URL, v)
	}},
	{env: "GATEWAY_PROXY_KEY", secret: true, set: func(c *Config, v string) error {
		c.Proxy.Key = strings.TrimSpace(v)
		return nil
	}},
	{key: "gateway.model", env: "HERALD_PROXY_MODEL", def: "hermes-agent", set: func(c *Config, v string) error {
		return setName(&c.Proxy.Model, v)
	}},
	{key: "gateway.connect_timeout", env: "HERALD_CONNECT_TIMEOUT", def: "10s", set: func(c *Config, v string) error {
		return setDuration(&c.ConnectTimeout, v, true)
	}},
	{key: "gateway.idle_timeout", env: "HERALD_IDLE_TIMEOUT", def: "30m", set: func(c *Config, v string) error {
		return setDuration(&c.IdleTimeout, v, true)
	}},
	{key: "agent.base_url", env: "HERALD_AGENT_BASE_URL", set: func(c *Config, v string) error {
		return setURL(&c.Agent.BaseURL, v)
	}},
	{key: "agent.api_key", env: "HERALD_AGENT_API_KEY", secret: true, set: func(c *Config, v string) error {
		c.Agent.APIKey = strings.TrimSpace(v)
		return nil
	}},
	{key: "agent.model", env: "HERALD_AGENT_MODEL", set: func(c *Config, v string) error {
		return setName(&c.Agent.Model, v)
	}},
	{key: "agent.system_prompt", env: "HERALD_AGENT_SYSTEM_PROMPT", set: func(c *Config, v string) error {
		c.Agent.SystemPrompt = strings.TrimSpace(v)
		return nil
	}},
	{key: "streaming.enabled", def: "true", set: func(c *Config, v string) error {
		return setBool(&c.Streaming.Enabled, v)
	}},
	{key: "streaming.transport", def: "auto", set: func(c *Config, v string) error {
		return setEnum(&c.Streaming.Transport, v, "auto", "draft", "edit", "off")
	}},
	{key: "streaming.edit_interval", def: "0.8", set: func(c *Config, v string) error {
		return setDuration(&c.Streaming.EditInterval, v, false)
	}},
	{key: "streaming.buffer_threshold", def: "24", set: func(c *Config, v string) error {
		return setPositive(&c.Streaming.BufferThreshold, v)
	}},
	{key: "streaming.cursor", def: " ▉", set: func(c *Config, v string) error {
		c.Streaming.Cursor = v
		return nil
	}},
	{key: "group_sessions_per_user", def: "true", set: func(c *Config, v string) error {
		return setBool(&c.GroupSessionsPerUser, v)
	}},
	{key: "thread_sessions_per_user", def: "false", set: func(c *Config, v string) error {
		return setBool(&c.ThreadSessionsPerUser, v)
	}},
	{key: "display.busy_input_mode", def: "interrupt", set: func(c *Config, v string) error {
		return setEnum(&c.BusyInputMode, v, "interrupt", "queue")
	}},
}

// allSettings is the fixed table plus each platform's allowlist settings.
func allSettings() []setting {
	all := append([]setting(nil), settings...)
	for _, p := range Platforms {
		upper := strings.ToUpper(p)
		all = append(all,
			setting{key: "platforms." + p + ".allowed_users", env: upper + "_ALLOWED_USERS", set: func(c *Config, v string) error {
				a := c.PlatformAccess[p]
				a.Users = splitList(v)
				c.PlatformAccess[p] = a
				return nil
			}},
			setting{key: "platforms." + p + ".allow_all_users", env: upper + "_ALLOW_ALL_USERS", def: "false", set: func(c *Config, v string) error {
				a := c.PlatformAccess[p]
				err := setBool(&a.AllowAll, v)
				c.PlatformAccess[p] = a
				return err
			}},
		)
	}
	return all
}

// splitList reads a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// setURL accepts an http(s) URL with a host and removes trailing slashes.
// An empty value leaves the URL unset.
func setURL(dst *string, v string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		*dst = ""
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := v
		if err == nil {
			shown = u.Redacted()
		}
		return fmt.Errorf("expected an http:// or https:// URL with a host, got %q", shown)
	}
	*dst = strings.TrimRight(v, "/")
	return nil
}

func setAddr(dst *string, v string) error {
	v = strings.TrimSpace(v)
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return fmt.Errorf("expected host:port such as 127.0.0.1:8643, got %q", v)
	}
	*dst = v
	return nil
}

func setName(dst *string, v string) error {
	*dst = strings.TrimSpace(v)
	return nil
}

func setBool(dst *bool, v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on", "1":
		*dst = true
	case "false", "no", "off", "0":
		*dst = false
	default:
		return fmt.Errorf("expected true or false, got %q", v)
	}
	return nil
}

func setEnum(dst *string, v string, allowed ...string) error {
	v = strings.ToLower(strings.TrimSpace(v))
	for _, a := range allowed {
		if v == a {
			*dst = v
			return nil
		}
	}
	return fmt.Errorf("expected one of %s, got %q", strings.Join(allowed, ", "), v)
}

func setPositive(dst *int, v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 {
		return fmt.Errorf("expected a whole number of at least 1, got %q", v)
	}
	*dst = n
	return nil
}

// setDuration accepts a number of seconds, as Hermes writes them (0.8), or a
// Go duration (800ms, 10s, 30m).
func setDuration(dst *time.Duration, v string, mustBePositive bool) error {
	v = strings.TrimSpace(v)
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return fmt.Errorf("expected a duration such as 10s or a number of seconds, got %q", v)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 || (mustBePositive && d == 0) {
		return fmt.Errorf("expected a duration above zero, got %q", v)
	}
	*dst = d
	return nil
}
