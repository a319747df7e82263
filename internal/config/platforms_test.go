package config

import (
	"errors"
	"strings"
	"testing"
)

// testchat is a platform registered only in this package's tests.
type testchat struct {
	Room string
	Loud bool
}

func (c *testchat) Settings() []Setting {
	return []Setting{
		{Key: "platforms.testchat.room", Env: "TESTCHAT_ROOM", Set: Text(&c.Room), Category: Messaging, Description: "the room", Prompt: "Room"},
		{Key: "platforms.testchat.loud", Default: "false", Set: Bool(&c.Loud), Description: "shout"},
	}
}

func (c *testchat) Check(*Config) error {
	if c.Room == "forbidden" {
		return errors.New("testchat: TESTCHAT_ROOM may not be forbidden")
	}
	return nil
}

func init() { RegisterPlatform("testchat", func() Section { return new(testchat) }) }

// A registered platform's settings load like the shared ones, each
// platform gets its allowlist settings, and its own check runs.
func TestRegisteredPlatformSettings(t *testing.T) {
	c := mustLoad(t, "platforms:\n  testchat:\n    loud: true\n    allowed_users: [ann, bob]\n", map[string]string{"TESTCHAT_ROOM": " lobby "})
	got := c.Platforms["testchat"].(*testchat)
	if got.Room != "lobby" || !got.Loud {
		t.Errorf("testchat settings = %+v", got)
	}
	if a := c.PlatformAccess["testchat"]; strings.Join(a.Users, ",") != "ann,bob" || a.AllowAll {
		t.Errorf("testchat allowlist = %+v", a)
	}
	for _, name := range []string{"TESTCHAT_ROOM", "TESTCHAT_ALLOWED_USERS", "TESTCHAT_ALLOW_ALL_USERS"} {
		if _, ok := Lookup(name); !ok {
			t.Errorf("%s is not registered", name)
		}
	}
	_, err := load(t, "", map[string]string{"TESTCHAT_ROOM": "forbidden"})
	if err == nil || !strings.Contains(err.Error(), "TESTCHAT_ROOM may not be forbidden") {
		t.Errorf("err = %v, want the platform's own check", err)
	}
}

func TestRegisteringAPlatformTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a second registration of testchat did not panic")
		}
	}()
	RegisterPlatform("testchat", func() Section { return new(testchat) })
}
