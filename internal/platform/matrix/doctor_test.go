package matrix

import (
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
)

// diagnosis asks a new adapter of opts, on the state in home, for its
// findings, by check.
func diagnosis(t *testing.T, opts setup, home string) map[string]platform.Finding {
	t.Helper()
	a, st := newAdapter(t, opts, home)
	defer st.Close()
	return platformtest.Diagnosis(a)
}

// herald doctor's Matrix checks against Dendrite: before the first start,
// after it (the kept session, the device, its keys, no cross-signing),
// with a token of another device than the crypto store's, and a token the
// homeserver does not know.
func TestDiagnose(t *testing.T) {
	srv := startHomeserver(t, testBudget)
	_, simURL := newSim(t)
	home := t.TempDir()
	opts, bot, registered := registerBot(t, srv, home)

	platformtest.ExpectFinding(t, diagnosis(t, opts, home), "matrix: login", platform.OK, "no session kept yet")

	g := startGateway(t, opts, home, simURL)
	c, err := g.adapter.connection()
	if err != nil {
		t.Fatal(err)
	}
	device := string(c.cli.DeviceID)
	found := diagnosis(t, opts, home) // beside the running gateway
	g.stop()
	platformtest.ExpectFinding(t, found, "matrix: login", platform.OK, "accepted: "+string(bot)+", device "+device)
	platformtest.ExpectFinding(t, found, "matrix: device", platform.OK, device+" exists")
	platformtest.ExpectFinding(t, found, "matrix: crypto store", platform.OK, "holds the keys of device "+device)
	platformtest.ExpectFinding(t, found, "matrix: cross-signing", platform.Warn, "not set up")

	// The token registration gave belongs to another device.
	withToken := opts
	withToken.AccessToken = registered
	found = diagnosis(t, withToken, home)
	platformtest.ExpectFinding(t, found, "matrix: crypto store", platform.Fail, "holds the keys of device "+device+", but the login is device")
	if f := found["matrix: crypto store"]; !strings.Contains(f.Fix, "log in as device "+device) {
		t.Errorf("the fix: %q", f.Fix)
	}

	withToken.AccessToken = "syt_not_a_token_dendrite_knows"
	platformtest.ExpectFinding(t, diagnosis(t, withToken, home), "matrix: login", platform.Fail, "does not accept MATRIX_ACCESS_TOKEN (M_UNKNOWN_TOKEN)")
}
