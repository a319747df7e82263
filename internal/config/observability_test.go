package config

import (
	"strings"
	"testing"
)

// Traces go to the traces' own URL as it is, else to the collector's
// /v1/traces; with neither, tracing is off. A URL that is not one is an
// error naming its variable.
func TestTracesURL(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, "http://collector:4318/v1/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/otlp/traces"}, "https://collector/otlp/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://own:4318/t"}, "http://own:4318/t"},
	} {
		if got := mustLoad(t, "", tc.env).TracesURL(); got != tc.want {
			t.Errorf("%v: TracesURL() = %q, want %q", tc.env, got, tc.want)
		}
	}
	_, err := load(t, "", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"})
	if err == nil || !strings.Contains(err.Error(), "env OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL") {
		t.Errorf("err = %v, want the variable named", err)
	}
}

// The log format is text or json, from the variable or log.format; another
// word is an error naming where it came from.
func TestLogFormat(t *testing.T) {
	if c := mustLoad(t, "", nil); c.LogFormat != "text" {
		t.Errorf("default log format %q, want text", c.LogFormat)
	}
	if c := mustLoad(t, "log:\n  format: JSON\n", nil); c.LogFormat != "json" {
		t.Errorf("log.format JSON read as %q", c.LogFormat)
	}
	_, err := load(t, "", map[string]string{"HERALD_LOG_FORMAT": "logfmt"})
	if err == nil || !strings.Contains(err.Error(), `env HERALD_LOG_FORMAT: expected one of text, json, got "logfmt"`) {
		t.Errorf("err = %v, want the variable and the allowed values named", err)
	}
}
