package tracing

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/talim/realtime/pkg/config"
)

// Options configures Setup.
type Options struct {
	// Service is the default service.name (OTEL_SERVICE_NAME overrides it).
	Service, Version, InstanceID string
	// Env looks variables up (os.LookupEnv in mains); nil means none are set.
	Env func(string) (string, bool)
	// Exporter, when set, replaces the exporter chosen by the environment and
	// switches tracing on (talim dev --otel writes spans to a file).
	Exporter sdktrace.SpanExporter
	// Console is where OTEL_TRACES_EXPORTER=console writes (default: discarded).
	Console io.Writer
}

// Setup installs a tracer provider as the standard OpenTelemetry variables say and
// returns its shutdown (flushes buffered spans). Tracing is OFF unless one of:
//
//   - OTEL_TRACES_EXPORTER=otlp, or an OTLP endpoint is set
//     (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): OTLP over
//     gRPC; the exporter reads the other OTEL_EXPORTER_OTLP_* variables itself;
//   - OTEL_TRACES_EXPORTER=console: JSON spans to Options.Console;
//   - Options.Exporter is set.
//
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none keep it off. The sampler is
// OTEL_TRACES_SAMPLER (+ OTEL_TRACES_SAMPLER_ARG), default parentbased_always_on.
// Bad values are configuration errors naming the variable.
func Setup(ctx context.Context, o Options) (shutdown func(context.Context) error, err error) {
	env := o.Env
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	get := func(k string) string { v, _ := env(k); return strings.TrimSpace(v) }
	nothing := func(context.Context) error { return nil }

	if d := strings.ToLower(get("OTEL_SDK_DISABLED")); d == "true" && o.Exporter == nil {
		Use(nil)
		return nothing, nil
	}
	sampler, err := Sampler(get("OTEL_TRACES_SAMPLER"), get("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		return nil, err
	}
	exp := o.Exporter
	if exp == nil {
		kind := strings.ToLower(get("OTEL_TRACES_EXPORTER"))
		if kind == "" && (get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
			kind = "otlp"
		}
		switch kind {
		case "", "none":
			Use(nil)
			return nothing, nil
		case "otlp":
			if p := get("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "grpc" {
				return nil, config.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL", "%q: only grpc is supported", p)
			}
			exp, err = otlptracegrpc.New(ctx)
			if err != nil {
				return nil, fmt.Errorf("otlp trace exporter: %w", err)
			}
		case "console":
			w := o.Console
			if w == nil {
				w = io.Discard
			}
			exp, err = stdouttrace.New(stdouttrace.WithWriter(w))
			if err != nil {
				return nil, fmt.Errorf("console trace exporter: %w", err)
			}
		default:
			return nil, config.Errorf("OTEL_TRACES_EXPORTER", "%q: want otlp, console or none", kind)
		}
	}
	name := get("OTEL_SERVICE_NAME")
	if name == "" {
		name = o.Service
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if o.Version != "" {
		attrs = append(attrs, attribute.String("service.version", o.Version))
	}
	if o.InstanceID != "" {
		attrs = append(attrs, attribute.String("service.instance.id", o.InstanceID))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sampler),
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	)
	Use(tp)
	return func(ctx context.Context) error {
		Use(nil)
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("flush traces: %w", err)
		}
		return nil
	}, nil
}

// Sampler parses the standard OTEL_TRACES_SAMPLER value and its argument.
func Sampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || f < 0 || f > 1 {
			return 0, config.Errorf("OTEL_TRACES_SAMPLER_ARG", "%q: want a ratio in [0, 1]", arg)
		}
		return f, nil
	}
	switch strings.ToLower(name) {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio", "parentbased_traceidratio":
		f, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(f), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(f)), nil
	default:
		return nil, config.Errorf("OTEL_TRACES_SAMPLER", "%q: want always_on, always_off, traceidratio or their parentbased_ forms", name)
	}
}
