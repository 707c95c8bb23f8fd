package workertest

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks/worker/deploy"
)

// ConfigNATS is an embedded nats-server started from a configuration file
// (see [StartNATSConfig]); it records what the server logs, so a test can
// see every permissions violation the server reported.
type ConfigNATS struct {
	*server.Server
	log *serverLog
}

// StartNATSConfig starts an embedded nats-server from the configuration
// file, as `nats-server -c file` would, with the test's own settings on
// top: loopback, a port the server picks, JetStream (when the file turns
// it on) in a fresh temporary directory, no signal handlers. opts change
// the options after that, e.g. to add TLS. It is shut down when the test
// ends.
func StartNATSConfig(tb testing.TB, file string, opts ...NATSOption) *ConfigNATS {
	tb.Helper()
	o, err := server.ProcessConfigFile(file)
	if err != nil {
		tb.Fatalf("workertest: nats-server config %s: %v", file, err)
	}
	o.Host, o.Port = "127.0.0.1", server.RANDOM_PORT
	o.StoreDir = tb.TempDir()
	o.NoSigs = true
	o.HTTPPort, o.HTTPSPort, o.Cluster.Port, o.LeafNode.Port, o.Gateway.Port = 0, 0, 0, 0, 0
	for _, opt := range opts {
		opt(o)
	}
	ns, err := server.NewServer(o)
	if err != nil {
		tb.Fatalf("workertest: nats-server: %v", err)
	}
	log := &serverLog{}
	ns.SetLoggerV2(log, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		tb.Fatalf("workertest: nats-server did not become ready within 20s; its log:\n%s", strings.Join(log.lines(), "\n"))
	}
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return &ConfigNATS{Server: ns, log: log}
}

// Log returns the lines the server logged at notice level and above.
func (c *ConfigNATS) Log() []string { return c.log.lines() }

// Violations returns the permissions violations the server logged so far,
// one line each, e.g. `... - "tenant-a" - Publish Violation - Subject
// "$JS.API.INFO"`.
func (c *ConfigNATS) Violations() []string { return violations(c.log.lines()) }

// violations picks the permissions violations out of a server's log lines.
func violations(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, "Publish Violation - ") || strings.Contains(l, "Subscription Violation") {
			out = append(out, l)
		}
	}
	return out
}

// serverLog is a server.Logger keeping every line.
type serverLog struct {
	mu sync.Mutex
	ls []string
}

func (l *serverLog) add(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ls = append(l.ls, level+" "+fmt.Sprintf(format, v...))
}

func (l *serverLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ls...)
}

func (l *serverLog) Noticef(format string, v ...any) { l.add("[INF]", format, v...) }
func (l *serverLog) Warnf(format string, v ...any)   { l.add("[WRN]", format, v...) }
func (l *serverLog) Fatalf(format string, v ...any)  { l.add("[FTL]", format, v...) }
func (l *serverLog) Errorf(format string, v ...any)  { l.add("[ERR]", format, v...) }
func (l *serverLog) Debugf(format string, v ...any)  {}
func (l *serverLog) Tracef(format string, v ...any)  {}

// RolesConfigFile is the path of worker/deploy/nats-roles.conf, the
// least-privilege configuration the project ships.
func RolesConfigFile(tb testing.TB) string {
	tb.Helper()
	// The file is found from this source file's path, which is absolute
	// unless the test binary was built with -trimpath.
	_, here, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(here) {
		tb.Fatalf("workertest: cannot find the source directory of workertest (%q); build the tests without -trimpath", here)
	}
	return filepath.Join(filepath.Dir(here), "..", "deploy", "nats-roles.conf")
}

// roleUsers are the users of nats-roles.conf.
var roleUsers = []string{deploy.WorkerUser, deploy.OperatorUser, deploy.TenantUser("a"), deploy.TenantUser("b")}

var (
	rolePasswordsOnce sync.Once
	rolePasswords     map[string]string
)

// RolePassword returns the password of a user of nats-roles.conf. The
// first call draws one for each user and puts it in the process's
// environment ([deploy.PasswordEnv]), where the config file reads it: the
// environment is the process's, so this is done once, never undone, and
// tests that start servers from the file may run in parallel.
func RolePassword(user string) string {
	rolePasswordsOnce.Do(func() {
		rolePasswords = make(map[string]string, len(roleUsers))
		for _, u := range roleUsers {
			// rand.Text is base32: letters and digits, as the file asks.
			pw := rand.Text()
			rolePasswords[u] = pw
			if err := os.Setenv(deploy.PasswordEnv(u), pw); err != nil {
				panic(err)
			}
		}
	})
	pw, ok := rolePasswords[user]
	if !ok {
		panic("workertest: no user " + user + " in nats-roles.conf")
	}
	return pw
}

// StartRolesNATS starts an embedded nats-server from nats-roles.conf (see
// [StartNATSConfig]), its users' passwords set by [RolePassword].
func StartRolesNATS(tb testing.TB, opts ...NATSOption) *ConfigNATS {
	tb.Helper()
	RolePassword(deploy.WorkerUser)
	return StartNATSConfig(tb, RolesConfigFile(tb), opts...)
}

// WithAccountsFrom gives a server the accounts, users and permissions of
// the nats-server configuration file, and nothing else of it: for servers
// the helpers set up otherwise, such as each node of [StartCluster]. The
// file is read again for each server, so that no two share an account.
func WithAccountsFrom(tb testing.TB, file string) NATSOption {
	tb.Helper()
	return func(o *server.Options) {
		fo, err := server.ProcessConfigFile(file)
		if err != nil {
			tb.Fatalf("workertest: nats-server config %s: %v", file, err)
		}
		o.Accounts, o.Users, o.Nkeys, o.NoAuthUser, o.SystemAccount = fo.Accounts, fo.Users, fo.Nkeys, fo.NoAuthUser, fo.SystemAccount
	}
}

// WithRoles gives a server the users of nats-roles.conf (see
// [WithAccountsFrom]), their passwords set by [RolePassword]:
// StartCluster(t, 3, WithRoles(t)) is the roles on a cluster. Their
// streams live in the roles' account, not in [GlobalAccount], where the
// cluster's leader helpers ([Cluster.StreamLeader]...) look.
func WithRoles(tb testing.TB) NATSOption {
	tb.Helper()
	RolePassword(deploy.WorkerUser)
	return WithAccountsFrom(tb, RolesConfigFile(tb))
}

// ConnectAs opens a connection to ns as user of nats-roles.conf, closed
// when the test ends. A tenant's connection uses the tenant's inbox
// prefix, as its runtime must; opts come after, and may replace it.
func ConnectAs(tb testing.TB, ns *server.Server, user string, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	base := []nats.Option{nats.UserInfo(user, RolePassword(user)), nats.Name(user)}
	if tenant, ok := strings.CutPrefix(user, "tenant-"); ok {
		base = append(base, nats.CustomInboxPrefix(deploy.TenantInboxPrefix(tenant)))
	}
	return Connect(tb, ns, append(base, opts...)...)
}
