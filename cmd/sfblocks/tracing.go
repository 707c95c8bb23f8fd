package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"

	"github.com/sfblocks/sfblocks/cmd/sfblocks/internal/otelsetup"
	"github.com/sfblocks/sfblocks/worker/client"
)

// startTracing builds the command's tracer provider from the OTEL_*
// environment (see package otelsetup: off unless an OTLP endpoint is set)
// and returns it with the function that flushes it at exit.
func startTracing(ctx context.Context, log zerolog.Logger) (*otelsetup.Provider, func(), error) {
	p, err := otelsetup.FromEnv(ctx, version)
	if err != nil {
		return nil, nil, err
	}
	if !p.Enabled() {
		return p, func() {}, nil
	}
	// The SDK reports what it could not export here; the error names the
	// endpoint at most, never the exporter's headers.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn().Err(err).Msg("tracing: spans could not be exported")
	}))
	log.Info().Str("endpoint", p.Endpoint).Msg("exporting traces over OTLP/HTTP")
	return p, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(sctx); err != nil {
			log.Warn().Err(err).Msg("tracing: the last spans could not be exported")
		}
	}, nil
}

// clientTracing is startTracing for the commands that send jobs (call,
// dlq): their spans start the traces the workers continue. Only failures
// are reported, on stderr.
func clientTracing(ctx context.Context, stderr io.Writer) (client.Option, func(), error) {
	p, flush, err := startTracing(ctx, zerolog.New(stderr).Level(zerolog.WarnLevel))
	if err != nil {
		return nil, nil, err
	}
	return client.WithTracerProvider(p.TracerProvider), flush, nil
}

// withTracingHelp adds the tracing environment to fs's usage, after its
// flags.
func withTracingHelp(fs *flag.FlagSet) *flag.FlagSet {
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintln(fs.Output(), "\nTracing: set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://otel-collector:4318) to export spans over OTLP/HTTP;\n"+
			"the other OTEL_* variables apply (see the README's \"Trace context\"). Off by default.")
	}
	return fs
}
