package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
)

// EnvSecret carries the simulator's consumer secret to the processes the
// bench starts (the workers' accounts config reads it as
// "env:SFBLOCKS_BENCH_SECRET", the baseline from [BaselineConfig]), so it
// is on no command line.
const EnvSecret = "SFBLOCKS_BENCH_SECRET"

// env is what every run of one bench shares: a temporary directory, an
// embedded NATS server with JetStream, the simulator, the accounts config
// the workers read, and the bench process's own NATS connection.
type env struct {
	dir      string
	binary   string
	ns       *server.Server
	sim      *sfsim.Server
	nc       *nats.Conn
	config   string
	tokenKey string
	logLevel string
	// targets are the NATS deployments the runs go to (the embedded
	// server, an external one given with --nats-url, or both), and cur
	// the one of the run under way (targets.go).
	targets []*target
	cur     *target
}

// startEnv starts NATS and the simulator on ports they pick themselves;
// close stops them and removes the directory.
func startEnv(ctx context.Context, binary, logLevel string, bc *Config) (*env, error) {
	dir, err := os.MkdirTemp("", "sfblocks-bench-*")
	if err != nil {
		return nil, fmt.Errorf("create the bench's temporary directory (is TMPDIR writable?): %w", err)
	}
	e := &env{dir: dir, binary: binary, logLevel: logLevel}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	if e.ns, err = startNATS(ctx, filepath.Join(dir, "nats")); err != nil {
		return nil, err
	}
	// A daily API limit no run can reach: the runs make hundreds of
	// thousands of calls, and the default 15000 would turn them into 403s.
	if e.sim, err = sfsim.Start("127.0.0.1:0", sfsim.Options{DailyAPILimit: 1 << 40, H2C: bc.SimH2C}); err != nil {
		return nil, fmt.Errorf("start the Salesforce simulator: %w", err)
	}
	if e.nc, err = nats.Connect(e.ns.ClientURL(), nats.Name("sfblocks-bench"), nats.Timeout(10*time.Second)); err != nil {
		return nil, fmt.Errorf("connect to the bench's NATS server: %w", err)
	}
	cfg, err := json.Marshal(map[string]any{"accounts": []map[string]any{{
		"name": benchAccount, "default": true, "login_url": e.sim.MyDomainURL(),
		"client_id": sfsim.DefaultClientID, "client_secret": "env:" + EnvSecret,
		"flow": "client_credentials",
	}}})
	if err != nil {
		return nil, fmt.Errorf("encode the workers' accounts config: %w", err)
	}
	e.config = filepath.Join(dir, "accounts.json")
	if err := os.WriteFile(e.config, cfg, 0o600); err != nil {
		return nil, fmt.Errorf("write the workers' accounts config: %w", err)
	}
	// The workers share one encrypted token cache in JetStream KV, as a
	// production fleet does: one token request for the whole fleet.
	if _, e.tokenKey, err = auth.GenerateKey(); err != nil {
		return nil, fmt.Errorf("generate the token cache key: %w", err)
	}
	if err := e.setTargets(ctx, bc); err != nil {
		return nil, err
	}
	ok = true
	return e, nil
}

// startNATS starts an embedded nats-server with JetStream on a loopback
// port it picks itself, as serve's development mode does.
func startNATS(ctx context.Context, storeDir string) (*server.Server, error) {
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return nil, fmt.Errorf("create the JetStream store directory: %w", err)
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "sfblocks-embedded",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	go ns.Start()
	// Wait in short steps so that an interrupt is not held up.
	deadline := time.Now().Add(10 * time.Second)
	for !ns.ReadyForConnections(100 * time.Millisecond) {
		if err := ctx.Err(); err != nil {
			ns.Shutdown()
			return nil, err
		}
		if time.Now().After(deadline) {
			ns.Shutdown()
			return nil, fmt.Errorf("the embedded NATS server did not start within 10s (is %s writable?)", storeDir)
		}
	}
	return ns, nil
}

func (e *env) close() {
	for _, t := range e.targets {
		if t.nc != e.nc {
			t.nc.Close()
		}
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.sim != nil {
		_ = e.sim.Close()
	}
	if e.ns != nil {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
	}
	_ = os.RemoveAll(e.dir)
}
