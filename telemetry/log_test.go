package telemetry

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestLogFormats(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{FormatJSON, `"msg":"access"`},
		{FormatText, `level=INFO msg=access route=api status=200`},
		{FormatAuto, `"msg":"access"`}, // a buffer is no terminal
	} {
		var b bytes.Buffer
		log, _, err := NewLogger(LogConfig{Format: tc.format}, &b)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("access", "route", "api", "status", 200)
		if got := b.String(); !strings.Contains(got, tc.want) {
			t.Errorf("format %s: %q, want it to contain %q", tc.format, got, tc.want)
		}
		if tc.format != FormatText && !json.Valid(b.Bytes()) {
			t.Errorf("format %s: not JSON: %q", tc.format, b.String())
		}
	}
}

func TestFormatForAuto(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	auto := LogConfig{Format: FormatAuto}
	if got := auto.FormatFor(w); got != FormatJSON {
		t.Errorf("auto on a pipe: %s, want json", got)
	}
	text := LogConfig{Format: FormatText}
	if got := text.FormatFor(w); got != FormatText {
		t.Errorf("text on a pipe: %s, want text", got)
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if got := auto.FormatFor(tty); got != FormatText {
			t.Errorf("auto on a terminal: %s, want text", got)
		}
	}
	bad := LogConfig{Format: "xml"}
	bad.Defaults()
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `format: unknown format "xml"`) {
		t.Errorf("format xml: %v", err)
	}
}
