package talim

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"

	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/pkg/tracing"
)

// devTracing sets tracing up for talim dev: with path (talim dev --otel) every
// span is written as one JSON object per line to that file ("-": stdout), so a
// newcomer sees one message's trace without installing a collector; without it,
// the OTEL_* variables decide (off unless an exporter is configured). The
// returned stop flushes and closes.
func devTracing(ctx context.Context, path string, env func(string) (string, bool), stdout io.Writer) (stop func(), err error) {
	o := tracing.Options{Service: "talim-dev", Version: service.Version, Env: env, Console: stdout}
	var file *os.File
	if path != "" {
		w := stdout
		if path != "-" {
			file, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return nil, fmt.Errorf("--otel: %w", err)
			}
			w = file
		}
		if o.Exporter, err = stdouttrace.New(stdouttrace.WithWriter(w)); err != nil {
			return nil, fmt.Errorf("--otel: %w", err)
		}
	}
	shutdown, err := tracing.Setup(ctx, o)
	if err != nil {
		if file != nil {
			_ = file.Close()
		}
		return nil, err
	}
	return func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(fctx)
		if file != nil {
			_ = file.Close()
		}
	}, nil
}
