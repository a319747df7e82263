package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Setting is one value Herald reads: where it is written (a config.yaml
// key, an environment variable, or both), its default, how a value is
// checked and stored, and how `herald env`, `herald check` and the README
// describe it. Each part of Herald declares its own, bound to the fields
// they fill (see Section).
type Setting struct {
	Key string // config.yaml path, such as "matrix.homeserver"; empty when only the environment sets it
	// AltKeys are other config.yaml paths for it (Hermes's spellings),
	// read in order when Key is not in the file.
	AltKeys []string
	// FileFirst reads config.yaml before the environment, as Hermes does
	// for this setting (it copies the file's value over the variable).
	FileFirst bool
	Env       string // environment variable; empty when only config.yaml sets it
	Default   string
	// Secret values are masked by `herald check` and never shown in errors.
	Secret bool
	// Reload: a running gateway takes a new value on SIGHUP; the others
	// wait for a restart.
	Reload bool
	// Description says in one line what the setting is for.
	Description string
	// Prompt, URL, Category and Advanced describe an environment variable
	// as Hermes's registry does (`herald env --json`).
	Prompt   string
	URL      string
	Category Category
	Advanced bool
	// Set checks a value and stores it, and returns it as stored
	// (normalised: spaces, a trailing /, case), which herald check shows.
	// Its error says what is wrong with the value, not where it came
	// from: Load adds that.
	Set func(v string) (string, error)
}

// name is how a setting is named to the user: its key, else its variable.
func (s Setting) name() string {
	if s.Key != "" {
		return s.Key
	}
	return s.Env
}

// The setters below store a value of one kind into a field, for
// Setting.Set, and return it as stored, for herald check.

// Text stores a value with surrounding spaces removed.
func Text(dst *string) func(string) (string, error) {
	return func(v string) (string, error) {
		*dst = strings.TrimSpace(v)
		return *dst, nil
	}
}

// Path stores a file's path, surrounding spaces removed and a leading ~/
// taken as the user's home directory, as Hermes expands it.
func Path(dst *string) func(string) (string, error) {
	return func(v string) (string, error) {
		v = strings.TrimSpace(v)
		if rest, ok := strings.CutPrefix(v, "~/"); ok {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("cannot expand ~ in %q: %w", v, err)
			}
			v = filepath.Join(home, rest)
		}
		*dst = v
		return v, nil
	}
}

// Checked stores a value, surrounding spaces removed, once check accepts
// it; an empty value is stored unchecked (the setting is unset).
func Checked(dst *string, check func(v string) error) func(string) (string, error) {
	return func(v string) (string, error) {
		v = strings.TrimSpace(v)
		if v != "" {
			if err := check(v); err != nil {
				return "", err
			}
		}
		*dst = v
		return v, nil
	}
}

// Raw stores a value as written, spaces included.
func Raw(dst *string) func(string) (string, error) {
	return func(v string) (string, error) {
		*dst = v
		return v, nil
	}
}

// Bool stores true or false (also yes/no, on/off, 1/0).
func Bool(dst *bool) func(string) (string, error) {
	return func(v string) (string, error) {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "yes", "on", "1":
			*dst = true
		case "false", "no", "off", "0":
			*dst = false
		default:
			return "", fmt.Errorf("expected true or false, got %q", v)
		}
		return strconv.FormatBool(*dst), nil
	}
}

// Enum stores one of the allowed words, in lower case.
func Enum(dst *string, allowed ...string) func(string) (string, error) {
	return func(v string) (string, error) {
		v = strings.ToLower(strings.TrimSpace(v))
		for _, a := range allowed {
			if v == a {
				*dst = v
				return v, nil
			}
		}
		return "", fmt.Errorf("expected one of %s, got %q", strings.Join(allowed, ", "), v)
	}
}

// URL stores an http(s) URL with a host, without trailing slashes; an
// empty value leaves it unset. A password in a rejected URL is not shown.
func URL(dst *string) func(string) (string, error) {
	return func(v string) (string, error) {
		v = strings.TrimSpace(v)
		if v == "" {
			*dst = ""
			return "", nil
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			shown := v
			if err == nil {
				shown = u.Redacted()
			}
			return "", fmt.Errorf("expected an http:// or https:// URL with a host, got %q", shown)
		}
		*dst = strings.TrimRight(v, "/")
		return *dst, nil
	}
}

// DatabaseURL stores a PostgreSQL connection URL (postgres:// or
// postgresql://); a password in it is never shown in an error.
func DatabaseURL(dst *string) func(string) (string, error) {
	return func(v string) (string, error) {
		v = strings.TrimSpace(v)
		if v == "" {
			*dst = ""
			return "", nil
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			shown := "(not a URL)"
			if err == nil {
				shown = u.Redacted()
			}
			return "", fmt.Errorf("expected a postgres://user@host/database URL, got %q", shown)
		}
		*dst = v
		return v, nil
	}
}

// Addr stores a host:port address.
func Addr(dst *string) func(string) (string, error) {
	return func(v string) (string, error) {
		v = strings.TrimSpace(v)
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			return "", fmt.Errorf("expected host:port such as 127.0.0.1:8643, got %q", v)
		}
		*dst = v
		return v, nil
	}
}

// Positive stores a whole number of at least 1.
func Positive(dst *int) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return "", fmt.Errorf("expected a whole number of at least 1, got %q", v)
		}
		*dst = n
		return strconv.Itoa(n), nil
	}
}

// Bytes stores a number of bytes of at least least.
func Bytes(dst *int64, least int64) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < least {
			return "", fmt.Errorf("expected a number of bytes of at least %d, got %q", least, v)
		}
		*dst = n
		return strconv.FormatInt(n, 10), nil
	}
}

// Duration stores a number of seconds, as Hermes writes them (0.8), or a
// Go duration (800ms, 10s, 30m); zero is allowed.
func Duration(dst *time.Duration) func(string) (string, error) {
	return func(v string) (string, error) { return setDuration(dst, v, false) }
}

// PositiveDuration is Duration above zero.
func PositiveDuration(dst *time.Duration) func(string) (string, error) {
	return func(v string) (string, error) { return setDuration(dst, v, true) }
}

func setDuration(dst *time.Duration, v string, mustBePositive bool) (string, error) {
	v = strings.TrimSpace(v)
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return "", fmt.Errorf("expected a duration such as 10s or a number of seconds, got %q", v)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 || (mustBePositive && d == 0) {
		return "", fmt.Errorf("expected a duration above zero, got %q", v)
	}
	*dst = d
	return d.String(), nil
}

// List stores a comma-separated list (a YAML list is joined with commas),
// dropping empty items; check, if set, says what is wrong with an item.
func List(dst *[]string, check func(item string) error) func(string) (string, error) {
	return func(v string) (string, error) {
		var items []string
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			if check != nil {
				if err := check(item); err != nil {
					return "", err
				}
			}
			items = append(items, item)
		}
		*dst = items
		return strings.Join(items, ","), nil
	}
}

// toolProgress stores a display.tool_progress mode, as Hermes names them:
// off, new, all, verbose or log; as in Hermes, a YAML boolean means all
// (true) or off (false).
func toolProgress(dst *string) func(string) (string, error) {
	modes := Enum(dst, "off", "new", "all", "verbose", "log")
	return func(v string) (string, error) {
		var on bool
		if _, err := Bool(&on)(v); err == nil {
			*dst = map[bool]string{true: "all", false: "off"}[on]
			return *dst, nil
		}
		return modes(v)
	}
}

// hour stores an hour of the day, 0 to 23.
func hour(dst *int) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > 23 {
			return "", fmt.Errorf("expected an hour of the day from 0 to 23, got %q", v)
		}
		*dst = n
		return strconv.Itoa(n), nil
	}
}

// ProxyURL stores the URL of a proxy for a platform's requests: http://,
// https:// or socks5:// (socks:// is taken as socks5://, as Hermes does);
// an empty value leaves it unset. A password in it is not shown.
func ProxyURL(dst *string) func(string) (string, error) {
	return func(v string) (string, error) {
		v = strings.TrimSpace(v)
		if rest, ok := strings.CutPrefix(v, "socks://"); ok {
			v = "socks5://" + rest
		}
		if v == "" {
			*dst = ""
			return "", nil
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
			shown := "a value that is not one"
			if err == nil {
				shown = strconv.Quote(u.Redacted())
			}
			return "", fmt.Errorf("expected an http://, https:// or socks5:// proxy URL, got %s", shown)
		}
		*dst = v
		return v, nil
	}
}
