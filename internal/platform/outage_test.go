package platform

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A failure is an outage once nothing has succeeded for OutageGrace; a
// success ends it; a request that hung counts from the success before it.
func TestOutageAfterItsGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var o Outage
		if o.Err() != nil {
			t.Fatal("the zero Outage reports one")
		}
		o.Failed(errors.New("502 Bad Gateway"))
		time.Sleep(OutageGrace / 2)
		o.Failed(errors.New("502 Bad Gateway"))
		if err := o.Err(); err != nil {
			t.Fatalf("an outage reported within its grace: %v", err)
		}
		time.Sleep(OutageGrace / 2)
		if err := o.Err(); err == nil || !strings.Contains(err.Error(), "no success for 10s: 502 Bad Gateway") {
			t.Fatalf("after the grace: %v", err)
		}
		o.Recovered()
		if err := o.Err(); err != nil {
			t.Fatalf("after a success: %v", err)
		}
		time.Sleep(time.Second)
		o.Failed(errors.New("timeout"))
		time.Sleep(OutageGrace - 2*time.Second)
		if err := o.Err(); err != nil {
			t.Fatalf("a new failure counted from the old one: %v", err)
		}
		o.Recovered()
		time.Sleep(OutageGrace)
		o.Failed(errors.New("context deadline exceeded")) // a request that hung since the success
		if err := o.Err(); err == nil {
			t.Fatal("a request that hung for the grace is no outage")
		}
	})
}

// A transport error or a 5xx is the platform being down; an answer of the
// platform's is not.
func TestUnavailable(t *testing.T) {
	refused := &url.Error{Op: "Post", URL: "https://api.example/send", Err: errors.New("connect: connection refused")}
	for _, c := range []struct {
		err    error
		status int
		want   bool
	}{
		{refused, 0, true},
		{fmt.Errorf("sending: %w", refused), 0, true},
		{errors.New("502 Bad Gateway"), 502, true},
		{errors.New("400 Bad Request: message is too long"), 400, false},
		{errors.New("invalid_auth"), 0, false},
	} {
		err := Unavailable(c.err, c.status)
		if got := errors.Is(err, ErrUnavailable); got != c.want || !errors.Is(err, c.err) {
			t.Errorf("Unavailable(%v, %d) = %v: unavailable %v, want %v, and the error kept", c.err, c.status, err, got, c.want)
		}
	}
	if Unavailable(nil, 503) != nil {
		t.Error("Unavailable(nil) is not nil")
	}
}
