package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/rs/zerolog"
)

// servePprof serves Go's profiles under /debug/pprof/ on addr, on a
// listener of its own: never on the metrics address, which operators
// expose to their scrapers, since a profile shows the process's internals
// (and a CPU profile costs CPU while it runs). It returns a func that stops
// it.
func servePprof(addr string, log zerolog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listener on %s: %w (set --pprof-addr, or leave it empty)", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	log.Warn().Str("addr", ln.Addr().String()).Msg("serving /debug/pprof/ (debugging only: leave --pprof-addr empty in production)")
	return func() { _ = hs.Close() }, nil
}
