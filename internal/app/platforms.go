package app

// The platforms Herald has. Each registers itself (its name, its settings
// and how its adapter is built) in its package; adding a platform is its
// folder and one line here.
import (
	_ "github.com/herald-chat/herald/internal/platform/discord"
	_ "github.com/herald-chat/herald/internal/platform/matrix"
	_ "github.com/herald-chat/herald/internal/platform/slack"
	_ "github.com/herald-chat/herald/internal/platform/telegram"
	_ "github.com/herald-chat/herald/internal/platform/webchat"
)
