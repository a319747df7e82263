// Package pgtest gives a test a PostgreSQL database of its own, on the
// server HERALD_TEST_DATABASE_URL names (as .ci/postgres.sh prints it),
// dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultURL is the server the tests use unless HERALD_TEST_DATABASE_URL
// names another: a local PostgreSQL with trust authentication, as machines
// of the go-svc kind run.
const defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// adminURL is the URL the tests connect to to create and drop their
// databases, and whether it was asked for: then a server that does not
// answer fails the tests rather than skipping them.
func adminURL() (string, bool) {
	if u := os.Getenv("HERALD_TEST_DATABASE_URL"); u != "" {
		return u, true
	}
	return defaultURL, false
}

// redacted is a URL as a test may show it.
func redacted(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(HERALD_TEST_DATABASE_URL, not a URL)"
}

// Exec runs statements on the server's admin database, in a connection of
// their own.
func Exec(t testing.TB, sql ...string) {
	t.Helper()
	admin, asked := adminURL()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if !asked {
			t.Skipf("no PostgreSQL at %s (set HERALD_TEST_DATABASE_URL): %v", redacted(admin), err)
		}
		t.Fatalf("connect to %s: %v", redacted(admin), err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	for _, q := range sql {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// NewDatabase creates an empty database for the test, dropped when the
// test ends (with whatever connections are left to it), and returns its
// URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "herald_test_" + hex.EncodeToString(b)
	Exec(t, "CREATE DATABASE "+name)
	t.Cleanup(func() { Exec(t, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	admin, _ := adminURL()
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("HERALD_TEST_DATABASE_URL must be a postgres:// URL: %s", redacted(admin))
	}
	u.Path = "/" + name
	return u.String()
}
