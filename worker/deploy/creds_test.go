package deploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/deploy"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// rolePermissions returns the permissions nats-roles.conf gives user, as
// user JWT permissions: in operator mode (decentralised auth) the same
// roles are carried by each user's JWT instead of the server's config.
func rolePermissions(t *testing.T, user string) jwt.Permissions {
	t.Helper()
	workertest.RolePassword(user)
	o, err := server.ProcessConfigFile(workertest.RolesConfigFile(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range o.Users {
		if u.Username != user {
			continue
		}
		var p jwt.Permissions
		if pub := u.Permissions.Publish; pub != nil {
			p.Pub = jwt.Permission{Allow: pub.Allow, Deny: pub.Deny}
		}
		if sub := u.Permissions.Subscribe; sub != nil {
			p.Sub = jwt.Permission{Allow: sub.Allow, Deny: sub.Deny}
		}
		if u.Permissions.Response != nil {
			t.Fatalf("user %s has allow_responses; the roles never need it", user)
		}
		return p
	}
	t.Fatalf("no user %s in nats-roles.conf", user)
	return jwt.Permissions{}
}

// decentral is an operator, a system account and the account SFBLOCKS
// (JetStream on), made for one test, trusted by a server in operator mode
// with a memory resolver.
type decentral struct {
	t       *testing.T
	account nkeys.KeyPair
	url     string
	dir     string
}

// newDecentral starts the server; the account revokes the users whose
// public keys are given.
func newDecentral(t *testing.T, revoked ...string) *decentral {
	t.Helper()
	op, err := nkeys.CreateOperator()
	if err != nil {
		t.Fatal(err)
	}
	opPub, _ := op.PublicKey()
	account := func(name string) (nkeys.KeyPair, string, string) {
		kp, err := nkeys.CreateAccount()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if name == "SFBLOCKS" {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
			for _, user := range revoked {
				// Every JWT of the user issued before then is revoked.
				ac.RevokeAt(user, time.Now().Add(time.Minute))
			}
		}
		token, err := ac.Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		return kp, pub, token
	}
	_, sysPub, sysJWT := account("SYS")
	accKP, accPub, accJWT := account("SFBLOCKS")
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "sfblocks-test"
	oc.SystemAccount = sysPub
	resolver := &server.MemAccResolver{}
	for pub, token := range map[string]string{sysPub: sysJWT, accPub: accJWT} {
		if err := resolver.Store(pub, token); err != nil {
			t.Fatal(err)
		}
	}
	ns := workertest.StartNATS(t, func(o *server.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{oc}
		o.AccountResolver = resolver
		o.SystemAccount = sysPub
		// The worker role's permissions make a user JWT over 4 KB,
		// carried in CONNECT: past the server's default 4 KB control
		// line. A deployment in operator mode sets max_control_line too
		// (README, Security).
		o.MaxControlLine = 16 << 10
	})
	return &decentral{t: t, account: accKP, url: ns.ClientURL(), dir: t.TempDir()}
}

// creds writes name.creds: user's seed (a new user when nil) and a user
// JWT with perms, changed by change when given, signed by signer (the
// SFBLOCKS account when nil).
func (d *decentral) creds(name string, user nkeys.KeyPair, perms jwt.Permissions, change func(*jwt.UserClaims), signer nkeys.KeyPair) string {
	d.t.Helper()
	if user == nil {
		var err error
		if user, err = nkeys.CreateUser(); err != nil {
			d.t.Fatal(err)
		}
	}
	if signer == nil {
		signer = d.account
	}
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	uc.Permissions = perms
	if change != nil {
		change(uc)
	}
	token, err := uc.Encode(signer)
	if err != nil {
		d.t.Fatal(err)
	}
	data, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		d.t.Fatal(err)
	}
	file := filepath.Join(d.dir, name+".creds")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		d.t.Fatal(err)
	}
	return file
}

// Decentralised auth end to end: an operator, its accounts and users made
// with nkeys and jwt, a server in operator mode, and the worker connecting
// through worker.ConnConfig's CredsFile with the worker role's
// permissions in its JWT, running both paths for a tenant whose JWT
// carries the tenant role. Revoked, expired, foreign and missing
// credentials fail saying why.
func TestCredsFileEndToEnd(t *testing.T) {
	t.Parallel()
	revokedUser, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	revokedPub, _ := revokedUser.PublicKey()
	d := newDecentral(t, revokedPub)
	workerPerms := rolePermissions(t, deploy.WorkerUser)

	_, exec := simExecutor(t)
	startWorker(t, worker.ConnConfig{URLs: []string{d.url}, CredsFile: d.creds("sfblocks-worker", nil, workerPerms, nil, nil)}, exec)
	tenantCreds := d.creds("tenant-a", nil, rolePermissions(t, deploy.TenantUser("a")), nil, nil)
	tenant, err := nats.Connect(d.url, nats.UserCredentials(tenantCreds), nats.CustomInboxPrefix(deploy.TenantInboxPrefix("a")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tenant.Close)
	c, err := client.New(tenant)
	if err != nil {
		t.Fatal(err)
	}
	runBothPaths(t, c)

	foreignAccount, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	garbled := filepath.Join(d.dir, "garbled.creds")
	if err := os.WriteFile(garbled, []byte("not a creds file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, wantErr string
	}{
		{"revoked", d.creds("revoked", revokedUser, workerPerms, nil, nil), "authorization violation"},
		{"expired", d.creds("expired", nil, workerPerms, func(uc *jwt.UserClaims) {
			uc.IssuedAt = time.Now().Add(-2 * time.Hour).Unix()
			uc.Expires = time.Now().Add(-time.Hour).Unix()
		}, nil), "authorization violation"},
		{"signed by an account the operator does not know", d.creds("foreign", nil, workerPerms, nil, foreignAccount), "authorization violation"},
		{"missing", filepath.Join(d.dir, "missing.creds"), "missing.creds: no such file or directory"},
		{"not a creds file", garbled, "garbled.creds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nc, err := worker.Connect(worker.ConnConfig{URLs: []string{d.url}, CredsFile: tt.file, ConnectTimeout: 2 * time.Second})
			if err == nil {
				nc.Close()
				t.Fatal("connected; want an error")
			}
			if !strings.Contains(strings.ToLower(err.Error()), tt.wantErr) || !strings.Contains(err.Error(), "worker: connecting to NATS at nats://127.0.0.1:") {
				t.Errorf("error %q, want it to name the server and say %q", err, tt.wantErr)
			}
		})
	}
}
