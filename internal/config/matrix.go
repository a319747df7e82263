package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Matrix holds the Matrix adapter's settings, under Hermes's names
// (MATRIX_*, matrix.* in config.yaml). Matrix is enabled when Homeserver
// is set.
type Matrix struct {
	// Homeserver is the client-server API base URL; empty disables Matrix.
	Homeserver string
	// AccessToken logs in as an existing device; else UserID + Password
	// log in (once: the device and token are kept under $HERALD_HOME/matrix).
	AccessToken string
	UserID      string
	Password    string
	// DeviceID asks for one stable device (each device has its own keys).
	DeviceID string

	// E2EEMode is off, optional or required (MATRIX_E2EE_MODE, or
	// required when MATRIX_ENCRYPTION=true).
	E2EEMode string
	// PickleKey protects the crypto store; empty means the key generated
	// once into $HERALD_HOME/matrix/pickle.key.
	PickleKey string
	// RecoveryKey unlocks secret storage, to cross-sign the bot's device at
	// every start.
	RecoveryKey string

	// AllowedRooms limits the rooms the bot answers in (DMs are exempt);
	// empty means every room it is in.
	AllowedRooms []string
	// RequireMention makes the bot answer in rooms of more than two members
	// only when mentioned (or replied to, or in a thread it answered in).
	RequireMention bool
	// FreeResponseRooms are rooms where every message is for the bot.
	FreeResponseRooms []string
	// IgnoreUserPatterns are regular expressions; a sender whose user id
	// matches one is ignored.
	IgnoreUserPatterns []string
	// ProcessNotices treats m.notice messages (usually other bots') as input.
	ProcessNotices bool
	// AutoThread answers a room's top-level message in a new thread on it.
	AutoThread bool
	// SessionScope is auto (threads are sessions of their own), room
	// (threads share the room's session) or thread (every top-level
	// message in a room starts a thread and a session).
	SessionScope string
	// Reactions marks the asking message with 👀, then ✅ or ❌.
	Reactions bool
	// HomeRoom is a room the bot joins at start.
	HomeRoom string
	// MaxMediaBytes is the largest image downloaded.
	MaxMediaBytes int64
	// EditInterval is the least time between two messages or edits to one
	// room, so a homeserver's rate limit is not hit on a normal answer.
	EditInterval time.Duration
	// ChunkSize is the longest message, in characters; longer answers are split.
	ChunkSize int

	// Set while loading, to resolve E2EEMode once both are known.
	e2eeMode   string
	encryption string
}

// Enabled reports whether Matrix is configured.
func (m Matrix) Enabled() bool { return m.Homeserver != "" }

// The Matrix settings. MATRIX_HOMESERVER comes last: its setter checks the
// settings before it together, since they only matter when it is set.
var matrixSettings = []setting{
	{env: "MATRIX_ACCESS_TOKEN", secret: true, set: func(c *Config, v string) error {
		c.MatrixSettings.AccessToken = strings.TrimSpace(v)
		return nil
	}},
	{key: "matrix.user_id", env: "MATRIX_USER_ID", set: func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		if v != "" && !validUserID(v) {
			return fmt.Errorf("expected a Matrix user id such as @herald:example.org, got %q", v)
		}
		c.MatrixSettings.UserID = v
		return nil
	}},
	{env: "MATRIX_PASSWORD", secret: true, set: func(c *Config, v string) error {
		c.MatrixSettings.Password = v
		return nil
	}},
	{key: "matrix.device_id", env: "MATRIX_DEVICE_ID", set: func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		if strings.ContainsAny(v, " /\t") {
			return fmt.Errorf("expected a device id without spaces or slashes, got %q", v)
		}
		c.MatrixSettings.DeviceID = v
		return nil
	}},
	{key: "matrix.e2ee_mode", env: "MATRIX_E2EE_MODE", set: func(c *Config, v string) error {
		if strings.TrimSpace(v) == "" {
			c.MatrixSettings.e2eeMode = ""
			return nil
		}
		return setEnum(&c.MatrixSettings.e2eeMode, v, "off", "optional", "required")
	}},
	{key: "matrix.encryption", env: "MATRIX_ENCRYPTION", set: func(c *Config, v string) error {
		if strings.TrimSpace(v) == "" {
			c.MatrixSettings.encryption = ""
			return nil
		}
		var b bool
		if err := setBool(&b, v); err != nil {
			return err
		}
		c.MatrixSettings.encryption = strconv.FormatBool(b)
		return nil
	}},
	{env: "MATRIX_PICKLE_KEY", secret: true, set: func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		if v != "" && len(v) < 16 {
			return errors.New("expected at least 16 characters (a long random string protects the crypto store)")
		}
		c.MatrixSettings.PickleKey = v
		return nil
	}},
	{env: "MATRIX_RECOVERY_KEY", secret: true, set: func(c *Config, v string) error {
		c.MatrixSettings.RecoveryKey = strings.TrimSpace(v)
		return nil
	}},
	{key: "matrix.allowed_rooms", env: "MATRIX_ALLOWED_ROOMS", set: func(c *Config, v string) error {
		rooms, err := roomList(v)
		c.MatrixSettings.AllowedRooms = rooms
		return err
	}},
	{key: "matrix.require_mention", env: "MATRIX_REQUIRE_MENTION", def: "true", set: func(c *Config, v string) error {
		return setBool(&c.MatrixSettings.RequireMention, v)
	}},
	{key: "matrix.free_response_rooms", env: "MATRIX_FREE_RESPONSE_ROOMS", set: func(c *Config, v string) error {
		rooms, err := roomList(v)
		c.MatrixSettings.FreeResponseRooms = rooms
		return err
	}},
	{key: "matrix.ignore_user_patterns", env: "MATRIX_IGNORE_USER_PATTERNS", set: func(c *Config, v string) error {
		patterns := splitList(v)
		for _, p := range patterns {
			if _, err := regexp.Compile(p); err != nil {
				return fmt.Errorf("expected regular expressions, comma-separated: %q: %w", p, err)
			}
		}
		c.MatrixSettings.IgnoreUserPatterns = patterns
		return nil
	}},
	{key: "matrix.process_notices", env: "MATRIX_PROCESS_NOTICES", def: "false", set: func(c *Config, v string) error {
		return setBool(&c.MatrixSettings.ProcessNotices, v)
	}},
	{key: "matrix.auto_thread", env: "MATRIX_AUTO_THREAD", def: "false", set: func(c *Config, v string) error {
		return setBool(&c.MatrixSettings.AutoThread, v)
	}},
	{key: "matrix.session_scope", env: "MATRIX_SESSION_SCOPE", def: "auto", set: func(c *Config, v string) error {
		return setEnum(&c.MatrixSettings.SessionScope, v, "auto", "room", "thread")
	}},
	{key: "matrix.reactions", env: "MATRIX_REACTIONS", def: "true", set: func(c *Config, v string) error {
		return setBool(&c.MatrixSettings.Reactions, v)
	}},
	{key: "matrix.home_room", env: "MATRIX_HOME_ROOM", set: func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		if v != "" && !validRoom(v) {
			return fmt.Errorf("expected a room id (!abc:example.org) or alias (#room:example.org), got %q", v)
		}
		c.MatrixSettings.HomeRoom = v
		return nil
	}},
	{key: "matrix.max_media_bytes", env: "MATRIX_MAX_MEDIA_BYTES", def: "104857600", set: func(c *Config, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("expected a number of bytes of at least 1, got %q", v)
		}
		c.MatrixSettings.MaxMediaBytes = n
		return nil
	}},
	{key: "matrix.edit_interval", env: "MATRIX_EDIT_INTERVAL", def: "3s", set: func(c *Config, v string) error {
		return setDuration(&c.MatrixSettings.EditInterval, v, false)
	}},
	{key: "matrix.chunk_size", env: "MATRIX_CHUNK_SIZE", def: "16000", set: func(c *Config, v string) error {
		return setPositive(&c.MatrixSettings.ChunkSize, v)
	}},
	{key: "matrix.homeserver", env: "MATRIX_HOMESERVER", set: func(c *Config, v string) error {
		m := &c.MatrixSettings
		if err := setURL(&m.Homeserver, v); err != nil {
			return err
		}
		mode, err := resolveE2EEMode(m.e2eeMode, m.encryption)
		m.E2EEMode = mode
		if !m.Enabled() {
			return nil
		}
		if err != nil {
			return err
		}
		return m.checkLogin()
	}},
}

func init() {
	registry = append(registry,
		Var{Name: "MATRIX_HOMESERVER", Description: "Matrix homeserver URL; setting it enables Matrix", Prompt: "Matrix homeserver URL (e.g. https://matrix.example.org)", URL: "https://spec.matrix.org/latest/client-server-api/", Category: Messaging},
		Var{Name: "MATRIX_ACCESS_TOKEN", Description: "Access token of the bot's Matrix device (or use MATRIX_USER_ID and MATRIX_PASSWORD)", Prompt: "Matrix access token", Secret: true, Category: Messaging},
		Var{Name: "MATRIX_USER_ID", Description: "The bot's Matrix user id, for a password login (@herald:example.org)", Prompt: "Matrix user id", Category: Messaging},
		Var{Name: "MATRIX_PASSWORD", Description: "The bot's Matrix password; used once, then the device and token kept under HERALD_HOME/matrix are reused", Prompt: "Matrix password", Secret: true, Category: Messaging},
		Var{Name: "MATRIX_DEVICE_ID", Description: "A stable Matrix device id for the bot (each device has its own encryption keys)", Prompt: "Matrix device id", Category: Messaging},
		Var{Name: "MATRIX_E2EE_MODE", Description: "End-to-end encryption: off, optional (default) or required (start-up fails if encryption cannot start)", Prompt: "Matrix encryption mode", Category: Messaging},
		Var{Name: "MATRIX_ENCRYPTION", Description: "true means MATRIX_E2EE_MODE=required, false means off (Hermes's name)", Prompt: "Matrix encryption", Category: Messaging},
		Var{Name: "MATRIX_PICKLE_KEY", Description: "Key that protects the Matrix crypto store (default: generated once into HERALD_HOME/matrix/pickle.key)", Prompt: "Matrix crypto store key", Secret: true, Category: Messaging, Advanced: true},
		Var{Name: "MATRIX_RECOVERY_KEY", Description: "Recovery key of the bot account's secret storage, to cross-sign its device at every start", Prompt: "Matrix recovery key", Secret: true, Category: Messaging},
		Var{Name: "MATRIX_ALLOWED_ROOMS", Description: "Rooms the bot answers in, comma-separated ids or aliases (DMs are exempt; default all)", Prompt: "Allowed Matrix rooms", Category: Messaging},
		Var{Name: "MATRIX_REQUIRE_MENTION", Description: "In rooms of more than two members, answer only when mentioned (default true)", Prompt: "Require a mention in rooms", Category: Messaging},
		Var{Name: "MATRIX_FREE_RESPONSE_ROOMS", Description: "Rooms where the bot answers every message without a mention, comma-separated", Prompt: "Matrix free-response rooms", Category: Messaging},
		Var{Name: "MATRIX_IGNORE_USER_PATTERNS", Description: "Senders to ignore: regular expressions on the user id, comma-separated", Prompt: "Ignored Matrix users", Category: Messaging, Advanced: true},
		Var{Name: "MATRIX_PROCESS_NOTICES", Description: "Answer m.notice messages too (usually sent by bots; default false)", Prompt: "Process notices", Category: Messaging, Advanced: true},
		Var{Name: "MATRIX_AUTO_THREAD", Description: "Answer top-level room messages in a thread on them (default false)", Prompt: "Answer in threads", Category: Messaging},
		Var{Name: "MATRIX_SESSION_SCOPE", Description: "auto (threads are sessions of their own), room or thread", Prompt: "Matrix session scope", Category: Messaging, Advanced: true},
		Var{Name: "MATRIX_REACTIONS", Description: "React 👀 to a message being answered, then ✅ or ❌ (default true)", Prompt: "Matrix reactions", Category: Messaging},
		Var{Name: "MATRIX_HOME_ROOM", Description: "A room the bot joins at start", Prompt: "Matrix home room", Category: Messaging, Advanced: true},
		Var{Name: "MATRIX_MAX_MEDIA_BYTES", Description: "Largest image downloaded from Matrix, in bytes (default 104857600)", Prompt: "Largest Matrix image", Category: Messaging, Advanced: true},
		Var{Name: "MATRIX_EDIT_INTERVAL", Description: "Least time between two messages or edits to one Matrix room while streaming (default 3s)", Prompt: "Matrix edit interval", Category: Messaging, Advanced: true},
		Var{Name: "MATRIX_CHUNK_SIZE", Description: "Longest Matrix message in characters; longer answers are split (default 16000)", Prompt: "Matrix message length", Category: Messaging, Advanced: true},
	)
	settings = append(settings, matrixSettings...)
}

// resolveE2EEMode combines MATRIX_E2EE_MODE and Hermes's MATRIX_ENCRYPTION.
func resolveE2EEMode(mode, encryption string) (string, error) {
	switch {
	case mode == "" && encryption == "true":
		return "required", nil
	case mode == "" && encryption == "false":
		return "off", nil
	case mode == "":
		return "optional", nil
	case encryption == "true" && mode != "required", encryption == "false" && mode != "off":
		return "optional", fmt.Errorf("MATRIX_E2EE_MODE=%s contradicts MATRIX_ENCRYPTION=%s: set one of them", mode, encryption)
	}
	return mode, nil
}

// checkLogin reports a Matrix configuration that cannot log in.
func (m *Matrix) checkLogin() error {
	switch {
	case m.AccessToken != "":
		return nil
	case m.UserID != "" && m.Password != "":
		return nil
	case m.UserID != "":
		return errors.New("Matrix is enabled but MATRIX_PASSWORD is missing: set it with MATRIX_USER_ID, or set MATRIX_ACCESS_TOKEN")
	case m.Password != "":
		return errors.New("Matrix is enabled but MATRIX_USER_ID is missing: set it with MATRIX_PASSWORD, or set MATRIX_ACCESS_TOKEN")
	}
	return errors.New("Matrix is enabled but cannot log in: set MATRIX_ACCESS_TOKEN, or MATRIX_USER_ID and MATRIX_PASSWORD")
}

// roomList reads comma-separated room ids or aliases.
func roomList(v string) ([]string, error) {
	rooms := splitList(v)
	for _, r := range rooms {
		if !validRoom(r) {
			return nil, fmt.Errorf("expected room ids (!abc:example.org) or aliases (#room:example.org), comma-separated; got %q", r)
		}
	}
	return rooms, nil
}

func validRoom(s string) bool {
	return len(s) > 3 && (s[0] == '!' || s[0] == '#') && strings.Contains(s[1:], ":")
}

func validUserID(s string) bool {
	local, server, ok := strings.Cut(strings.TrimPrefix(s, "@"), ":")
	return strings.HasPrefix(s, "@") && ok && local != "" && server != ""
}
