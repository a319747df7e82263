package matrix

import "github.com/herald-chat/herald/internal/config"

// Hermes's Matrix settings (its matrix adapter and reference of environment
// variables, as read in December 2026), marked for the README's
// compatibility table; a test in internal/app holds them to the registry.
func init() {
	config.RegisterHermes([]config.Compat{
		{Name: "MATRIX_HOMESERVER", Mark: config.Same},
		{Name: "MATRIX_ACCESS_TOKEN", Mark: config.Same},
		{Name: "MATRIX_USER_ID", Mark: config.Same},
		{Name: "MATRIX_PASSWORD", Mark: config.Same},
		{Name: "MATRIX_DEVICE_ID", Mark: config.Same},
		{Name: "MATRIX_RECOVERY_KEY", Mark: config.Same},
		{Name: "MATRIX_ALLOWED_USERS", Mark: config.Same},
		{Name: "MATRIX_ALLOW_ALL_USERS", Mark: config.Same, Default: "false"},
		{Name: "MATRIX_ALLOWED_ROOMS", Mark: config.Same},
		{Name: "MATRIX_REQUIRE_MENTION", Mark: config.Same, Default: "true"},
		{Name: "MATRIX_FREE_RESPONSE_ROOMS", Mark: config.Same},
		{Name: "MATRIX_AUTO_THREAD", Mark: config.Same, Default: "true"},
		{Name: "MATRIX_HOME_ROOM", Mark: config.Same},
		{Name: "MATRIX_DM_AUTO_THREAD", Mark: config.Same, Default: "false"},
		{Name: "MATRIX_DM_MENTION_THREADS", Mark: config.Same, Default: "false"},
		{Name: "MATRIX_THREAD_REQUIRE_MENTION", Mark: config.Same, Default: "false"},
		{Name: "MATRIX_HOME_ROOM_NAME", Mark: config.Same, Default: "Home"},
		{Name: "MATRIX_HOME_ROOM_THREAD_ID", Mark: config.Same},
		{Name: "MATRIX_RECOVERY_KEY_OUTPUT_FILE", Mark: config.Same},
		{Name: "MATRIX_PROXY", Mark: config.Same},
		{Name: "MATRIX_E2EE_MODE", Mark: config.OtherDefault, Default: "off",
			Why: "unset, Herald encrypts where a room is encrypted (optional): its encryption is pure Go, needing no native library, and Element's DMs are encrypted"},
		{Name: "MATRIX_ENCRYPTION", Mark: config.Same},
	}...)
}
