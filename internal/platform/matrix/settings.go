package matrix

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/platform"
)

// Name is the platform's name, in config keys and chat.Source.Platform.
const Name = "matrix"

func init() { platform.Register(Name, func() platform.Settings { return new(Options) }) }

// Options are the Matrix adapter's settings, under Hermes's names
// (MATRIX_*, matrix.* in config.yaml). Matrix is on when Homeserver is set.
type Options struct {
	// Homeserver is the client-server API base URL.
	Homeserver string
	// AccessToken logs in as the device it belongs to.
	AccessToken string
	// UserID and Password log in when there is no AccessToken. The device
	// and token the login gives are kept and reused on later starts.
	UserID   string
	Password string
	// DeviceID asks for this device (each device has its own keys).
	DeviceID string
	// DeviceName names a device created by a password login.
	DeviceName string

	// E2EE is E2EEOff, E2EEOptional (the default) or E2EERequired.
	E2EE string
	// PickleKey protects the crypto store; empty means a key generated once
	// into the adapter's directory (pickle.key, mode 0600).
	PickleKey string
	// RecoveryKey unlocks the account's secret storage: the cross-signing
	// keys are fetched from it and the device signed, at every start.
	RecoveryKey string
	// RecoveryKeyFile, without a RecoveryKey, is where the gateway writes
	// the recovery key of the cross-signing it sets up for an account that
	// has none (Hermes's MATRIX_RECOVERY_KEY_OUTPUT_FILE).
	RecoveryKeyFile string

	// AllowedRooms limits the rooms (ids or aliases) the bot reads; DMs
	// are exempt. Empty means every room it is in.
	AllowedRooms []string
	// RequireMention: in a room of more than two members, only messages
	// that mention the bot, reply to it or are in a thread it answered in.
	RequireMention bool
	// FreeResponseRooms take every message without a mention.
	FreeResponseRooms []string
	// IgnoreUserPatterns are regular expressions on sender user ids.
	IgnoreUserPatterns []string
	// ProcessNotices takes m.notice messages too.
	ProcessNotices bool
	// AutoThread answers top-level room messages in a thread on them.
	AutoThread bool
	// DMAutoThread and DMMentionThreads do the same in DMs: for every
	// top-level message, or for those that mention the bot.
	DMAutoThread, DMMentionThreads bool
	// ThreadRequireMention makes threads the bot answered in need a
	// mention like any other place.
	ThreadRequireMention bool
	// SessionScope is ScopeAuto (the default), ScopeRoom or ScopeThread.
	SessionScope string
	// Reactions marks asking messages with 👀, ✅ and ❌ (see TurnStatus).
	Reactions bool
	// HomeRoom is a room (id or alias) the bot joins at start, where messages
	// nobody asked for go (in its thread, if one is set).
	HomeRoom platform.Home
	// Proxy carries the requests to the homeserver: an http, https or
	// socks5 URL.
	Proxy string
	// MaxMediaBytes is the largest image downloaded (default 100 MB).
	MaxMediaBytes int64

	// MaxLength is the longest message in characters (default 16000).
	MaxLength int
	// Budget is the account's message budget; zero means MessageBudget.
	Budget platform.Bucket

	// e2eeMode and encryption are MATRIX_E2EE_MODE and Hermes's
	// MATRIX_ENCRYPTION as written; Check settles E2EE from them.
	e2eeMode, encryption string
}

// Settings binds Matrix's settings to o.
func (o *Options) Settings() []config.Setting {
	msg := config.Messaging
	return append([]config.Setting{
		{Key: "matrix.homeserver", Env: "MATRIX_HOMESERVER", Set: config.URL(&o.Homeserver), Category: msg,
			Description: "Matrix homeserver URL; setting it turns Matrix on",
			Prompt:      "Matrix homeserver URL (e.g. https://matrix.example.org)", URL: "https://spec.matrix.org/latest/client-server-api/"},
		{Env: "MATRIX_ACCESS_TOKEN", Secret: true, Set: config.Text(&o.AccessToken), Category: msg,
			Description: "Access token of the bot's Matrix device (or MATRIX_USER_ID and MATRIX_PASSWORD)",
			Prompt:      "Matrix access token"},
		{Key: "matrix.user_id", Env: "MATRIX_USER_ID", Category: msg,
			Description: "The bot's Matrix user id for a password login, e.g. @herald:example.org",
			Prompt:      "Matrix user id",
			Set: config.Checked(&o.UserID, func(v string) error {
				if !validUserID(v) {
					return fmt.Errorf("expected a Matrix user id such as @herald:example.org, got %q", v)
				}
				return nil
			})},
		{Env: "MATRIX_PASSWORD", Secret: true, Set: config.Raw(&o.Password), Category: msg,
			Description: "The bot's Matrix password; the device and token it gets are kept in HERALD_HOME/matrix/session.json and reused",
			Prompt:      "Matrix password"},
		{Key: "matrix.device_id", Env: "MATRIX_DEVICE_ID", Category: msg,
			Description: "A stable Matrix device id for the bot (each device has its own encryption keys)",
			Prompt:      "Matrix device id",
			Set: config.Checked(&o.DeviceID, func(v string) error {
				if strings.ContainsAny(v, " /\t") {
					return fmt.Errorf("expected a device id without spaces or slashes, got %q", v)
				}
				return nil
			})},
		{Key: "matrix.encryption", Env: "MATRIX_ENCRYPTION", Category: msg,
			Description: "Hermes's switch: true means MATRIX_E2EE_MODE=required, false means off",
			Prompt:      "Matrix encryption",
			Set: func(v string) (string, error) {
				o.encryption = ""
				if strings.TrimSpace(v) == "" {
					return "", nil
				}
				var on bool
				if _, err := config.Bool(&on)(v); err != nil {
					return "", err
				}
				o.encryption = strconv.FormatBool(on)
				return o.encryption, nil
			}},
		{Key: "matrix.e2ee_mode", Env: "MATRIX_E2EE_MODE", Category: msg,
			Description: "End-to-end encryption: off, optional (the default) or required (start-up fails when encryption cannot start); Hermes's spellings work too (require, true, yes, on, 1; prefer, preferred; false, no, 0, disabled)",
			Prompt:      "Matrix encryption mode",
			// Read after matrix.encryption: unset, it shows the mode that
			// one gives.
			Set: func(v string) (string, error) {
				o.e2eeMode = ""
				v = strings.ToLower(strings.TrimSpace(v))
				if v == "" {
					mode, _ := resolveE2EEMode("", o.encryption)
					return mode, nil
				}
				if mode, ok := e2eeAliases[v]; ok {
					o.e2eeMode = mode
					return mode, nil
				}
				return "", fmt.Errorf("expected one of off, optional, required (or Hermes's spellings of them), got %q", v)
			}},
		{Env: "MATRIX_PICKLE_KEY", Secret: true, Category: msg, Advanced: true,
			Description: "Key of the Matrix crypto store; default: generated once into HERALD_HOME/matrix/pickle.key (mode 0600)",
			Prompt:      "Matrix crypto store key",
			Set: config.Checked(&o.PickleKey, func(v string) error {
				if len(v) < 16 {
					return errors.New("expected at least 16 characters (a long random string protects the crypto store)")
				}
				return nil
			})},
		{Env: "MATRIX_RECOVERY_KEY_OUTPUT_FILE", Set: config.Path(&o.RecoveryKeyFile), Category: msg, Advanced: true,
			Description: "Without MATRIX_RECOVERY_KEY, and for an account with no cross-signing yet: set up cross-signing and secret storage, and write the recovery key to this file (mode 0600; never over an existing file)",
			Prompt:      "Matrix recovery key output file"},
		{Env: "MATRIX_RECOVERY_KEY", Secret: true, Set: config.Text(&o.RecoveryKey), Category: msg,
			Description: "Recovery key of the bot account's secret storage: cross-signs the bot's device at every start",
			Prompt:      "Matrix recovery key"},
		{Key: "matrix.allowed_rooms", Env: "MATRIX_ALLOWED_ROOMS", Set: config.List(&o.AllowedRooms, checkRoom), Category: msg,
			Description: "Rooms (ids or aliases) the bot answers in, comma-separated; DMs are exempt; default all",
			Prompt:      "Allowed Matrix rooms"},
		{Key: "matrix.require_mention", Env: "MATRIX_REQUIRE_MENTION", Default: "true", Set: config.Bool(&o.RequireMention), Category: msg,
			Description: "In rooms of more than two members, answer only when mentioned, replied to or in a thread the bot answered in",
			Prompt:      "Require a mention in rooms"},
		{Key: "matrix.free_response_rooms", Env: "MATRIX_FREE_RESPONSE_ROOMS", Set: config.List(&o.FreeResponseRooms, checkRoom), Category: msg,
			Description: "Rooms where every message is for the bot, comma-separated",
			Prompt:      "Matrix free-response rooms"},
		{Key: "matrix.ignore_user_patterns", Env: "MATRIX_IGNORE_USER_PATTERNS", Category: msg, Advanced: true,
			Description: "Senders to ignore: regular expressions on the user id, comma-separated",
			Prompt:      "Ignored Matrix users",
			Set: config.List(&o.IgnoreUserPatterns, func(p string) error {
				if _, err := regexp.Compile(p); err != nil {
					return fmt.Errorf("expected regular expressions, comma-separated: %q: %w", p, err)
				}
				return nil
			})},
		{Key: "matrix.process_notices", Env: "MATRIX_PROCESS_NOTICES", Default: "false", Set: config.Bool(&o.ProcessNotices), Category: msg, Advanced: true,
			Description: "Answer m.notice messages too (usually sent by bots)",
			Prompt:      "Process notices"},
		{Key: "matrix.auto_thread", Env: "MATRIX_AUTO_THREAD", Default: "true", Set: config.Bool(&o.AutoThread), Category: msg,
			Description: "Answer top-level room messages in a thread on them (not in DMs), as Hermes does by default",
			Prompt:      "Answer in threads"},
		{Key: "matrix.dm_auto_thread", Env: "MATRIX_DM_AUTO_THREAD", Default: "false", Set: config.Bool(&o.DMAutoThread), Category: msg, Advanced: true,
			Description: "Answer top-level DM messages in a thread on them",
			Prompt:      "Answer DMs in threads"},
		{Key: "matrix.dm_mention_threads", Env: "MATRIX_DM_MENTION_THREADS", Default: "false", Set: config.Bool(&o.DMMentionThreads), Category: msg, Advanced: true,
			AltKeys:     []string{"platforms.matrix.extra.dm_mention_threads"},
			Description: "Answer DM messages that mention the bot in a thread on them",
			Prompt:      "Answer DM mentions in threads"},
		{Key: "matrix.thread_require_mention", Env: "MATRIX_THREAD_REQUIRE_MENTION", Default: "false", Set: config.Bool(&o.ThreadRequireMention), Category: msg, Advanced: true,
			AltKeys:     []string{"platforms.matrix.extra.thread_require_mention"},
			Description: "Threads the bot answered in need a mention too (where MATRIX_REQUIRE_MENTION is on): against bots answering each other in a thread",
			Prompt:      "Require a mention in threads"},
		{Key: "matrix.session_scope", Env: "MATRIX_SESSION_SCOPE", Default: ScopeAuto, Set: config.Enum(&o.SessionScope, ScopeAuto, ScopeRoom, ScopeThread), Category: msg, Advanced: true,
			Description: "auto (threads are sessions of their own), room (threads share the room's session, answers still go in the thread) or thread (every top-level message starts a thread)",
			Prompt:      "Matrix session scope"},
		{Key: "matrix.reactions", Env: "MATRIX_REACTIONS", Default: "true", Set: config.Bool(&o.Reactions), Category: msg,
			Description: "React 👀 to a message being answered, then ✅ or ❌",
			Prompt:      "Matrix reactions"},
		{Key: "matrix.proxy", Env: "MATRIX_PROXY", Category: msg, Advanced: true, Set: config.ProxyURL(&o.Proxy),
			Description: "Proxy for the requests to the homeserver: an http://, https:// or socks5:// URL (socks:// is socks5://)",
			Prompt:      "Matrix proxy"},
		{Key: "matrix.home_room", Env: "MATRIX_HOME_ROOM", Category: msg, Advanced: true,
			AltKeys:     []string{"platforms.matrix.home_channel", platform.HomeChatKey(Name)},
			Description: "A room the bot joins at start",
			Prompt:      "Matrix home room",
			Set: config.Checked(&o.HomeRoom.Chat, func(v string) error {
				if !validRoom(v) {
					return fmt.Errorf("expected a room id (!abc:example.org) or alias (#room:example.org), got %q", v)
				}
				return nil
			})},
		{Key: "matrix.max_media_bytes", Env: "MATRIX_MAX_MEDIA_BYTES", Default: strconv.Itoa(DefaultMaxMediaBytes), Set: config.Bytes(&o.MaxMediaBytes, 1), Category: msg, Advanced: true,
			Description: "Largest image downloaded from Matrix, in bytes",
			Prompt:      "Largest Matrix image"},
		{Key: "matrix.chunk_size", Env: "MATRIX_CHUNK_SIZE", Default: strconv.Itoa(DefaultMaxLength), Set: config.Positive(&o.MaxLength), Category: msg, Advanced: true,
			Description: "Longest Matrix message in characters; longer answers are split",
			Prompt:      "Matrix message length"},
	}, slices.Concat(platform.HomeSettings(Name, "MATRIX_HOME_ROOM", &o.HomeRoom, "Home", checkEventID),
		platform.BudgetSettings(Name, &o.Budget, MessageBudget))...)
}

// checkEventID accepts an event's id, such as a thread's root.
func checkEventID(v string) error {
	if !strings.HasPrefix(v, "$") || len(v) < 2 {
		return fmt.Errorf("expected an event id such as $abc123, got %q", v)
	}
	return nil
}

// Home is the home room, in its thread if one is set.
func (o *Options) Home() (chat.Target, bool) { return o.HomeRoom.Target(false) }

// e2eeAliases are the values of MATRIX_E2EE_MODE, Hermes's spellings
// included, and the modes they mean.
var e2eeAliases = map[string]string{
	E2EEOff: E2EEOff, "false": E2EEOff, "no": E2EEOff, "0": E2EEOff, "disabled": E2EEOff,
	E2EEOptional: E2EEOptional, "prefer": E2EEOptional, "preferred": E2EEOptional,
	E2EERequired: E2EERequired, "require": E2EERequired, "true": E2EERequired, "yes": E2EERequired, "on": E2EERequired, "1": E2EERequired,
}

// Check settles the encryption mode from MATRIX_E2EE_MODE and Hermes's
// MATRIX_ENCRYPTION, and reports a configuration that cannot log in.
func (o *Options) Check(*config.Config) error {
	mode, err := resolveE2EEMode(o.e2eeMode, o.encryption)
	o.E2EE = mode
	if !o.Enabled() {
		return nil
	}
	if err != nil {
		return err
	}
	return o.checkLogin()
}

// Enabled tells whether a homeserver is set.
func (o *Options) Enabled() bool { return o.Homeserver != "" }

// Adapter builds the Matrix adapter.
func (o *Options) Adapter(d platform.Deps) (platform.Adapter, error) { return New(*o, d) }

// resolveE2EEMode combines MATRIX_E2EE_MODE and Hermes's MATRIX_ENCRYPTION.
func resolveE2EEMode(mode, encryption string) (string, error) {
	switch {
	case mode == "" && encryption == "true":
		return E2EERequired, nil
	case mode == "" && encryption == "false":
		return E2EEOff, nil
	case mode == "":
		return E2EEOptional, nil
	case encryption == "true" && mode != E2EERequired, encryption == "false" && mode != E2EEOff:
		return E2EEOptional, fmt.Errorf("MATRIX_E2EE_MODE=%s contradicts MATRIX_ENCRYPTION=%s: set one of them", mode, encryption)
	}
	return mode, nil
}

// checkLogin reports a Matrix configuration that cannot log in.
func (o *Options) checkLogin() error {
	switch {
	case o.AccessToken != "":
		return nil
	case o.UserID != "" && o.Password != "":
		return nil
	case o.UserID != "":
		return errors.New("MATRIX_HOMESERVER is set but MATRIX_PASSWORD is missing: set it with MATRIX_USER_ID, or set MATRIX_ACCESS_TOKEN")
	case o.Password != "":
		return errors.New("MATRIX_HOMESERVER is set but MATRIX_USER_ID is missing: set it with MATRIX_PASSWORD, or set MATRIX_ACCESS_TOKEN")
	}
	return errors.New("MATRIX_HOMESERVER is set but Matrix cannot log in: set MATRIX_ACCESS_TOKEN, or MATRIX_USER_ID and MATRIX_PASSWORD")
}

// checkRoom accepts a room id or alias.
func checkRoom(r string) error {
	if !validRoom(r) {
		return fmt.Errorf("expected room ids (!abc:example.org) or aliases (#room:example.org), comma-separated; got %q", r)
	}
	return nil
}

func validRoom(s string) bool {
	return len(s) > 3 && (s[0] == '!' || s[0] == '#') && strings.Contains(s[1:], ":")
}

func validUserID(s string) bool {
	local, server, ok := strings.Cut(strings.TrimPrefix(s, "@"), ":")
	return strings.HasPrefix(s, "@") && ok && local != "" && server != ""
}
