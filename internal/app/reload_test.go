package app

import (
	"context"
	"slices"
	"testing"

	"github.com/herald-chat/herald/internal/config/configtest"
)

// Reload applies the allowlists and display settings to the running
// gateway and names the changed settings that wait for a restart; the
// web chat stays open without an allowlist after a reload too.
func TestReload(t *testing.T) {
	env := map[string]string{"HERALD_HTTP_ADDR": "127.0.0.1:0", "TELEGRAM_BOT_TOKEN": "123456789:AAEreloadTestTokenForTheAppPackage", "TELEGRAM_ALLOWED_USERS": "1001"}
	a, err := Build(t.Context(), configtest.MustLoad(t, "", env), Options{Backend: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		a.Run(ctx)
	}()
	if a.Runner.Allows("telegram", "1002") {
		t.Fatal("1002 allowed before the reload")
	}
	env["TELEGRAM_ALLOWED_USERS"] = "1001,1002"
	env["HERALD_HTTP_MAX_CONNECTIONS"] = "100"
	applied, restart := a.Reload(configtest.MustLoad(t, "streaming:\n  enabled: false\n", env))
	if want := []string{"platforms.telegram.allowed_users", "streaming.enabled"}; !sameSet(applied, want) {
		t.Errorf("applied %q, want %q", applied, want)
	}
	if want := []string{"http.max_connections"}; !sameSet(restart, want) {
		t.Errorf("waiting for a restart: %q, want %q", restart, want)
	}
	if !a.Runner.Allows("telegram", "1002") || !a.Runner.Allows("webchat", "anyone") {
		t.Error("after the reload, the new allowlists are not the gateway's")
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}
