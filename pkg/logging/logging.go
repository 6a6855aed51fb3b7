// Package logging builds the structured logger every component receives by injection.
// There is no global logger: constructors take a *slog.Logger.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// New returns a logger writing JSON (format "json") or logfmt-like text ("text") at
// level ("debug", "info", "warn", "error"). Lines logged with a context carrying a
// span get trace_id and span_id (TraceHandler).
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(WithTrace(slog.NewJSONHandler(w, opts))), nil
	case "text", "":
		return slog.New(WithTrace(slog.NewTextHandler(w, opts))), nil
	default:
		return nil, fmt.Errorf("log format %q: want json or text", format)
	}
}

// Discard returns a logger that drops everything (tests).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
