package worker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/sfblocks/sfblocks/worker/workertest"
)

func TestConnectAuth(t *testing.T) {
	t.Parallel()
	userSrv := workertest.StartNATS(t, workertest.WithoutJetStream, func(o *server.Options) { o.Username, o.Password = "sf", "hunter2-pw" })
	tokenSrv := workertest.StartNATS(t, workertest.WithoutJetStream, func(o *server.Options) { o.Authorization = "tok-s3cret" })

	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	nkeySrv := workertest.StartNATS(t, workertest.WithoutJetStream, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })

	tests := []struct {
		name    string
		cfg     ConnConfig
		wantErr bool
	}{
		{"user password", ConnConfig{URLs: []string{userSrv.ClientURL()}, User: "sf", Password: "hunter2-pw"}, false},
		{"wrong password", ConnConfig{URLs: []string{userSrv.ClientURL()}, User: "sf", Password: "wrong-pw"}, true},
		{"token", ConnConfig{URLs: []string{tokenSrv.ClientURL()}, Token: "tok-s3cret"}, false},
		{"nkey", ConnConfig{URLs: []string{nkeySrv.ClientURL()}, NKeySeedFile: seedFile}, false},
		{"url with credentials", ConnConfig{URLs: []string{strings.Replace(userSrv.ClientURL(), "nats://", "nats://sf:wrong-pw@", 1)}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs workertest.LogBuffer
			tc.cfg.Logger = zerolog.New(&logs)
			tc.cfg.ConnectTimeout = 2 * time.Second
			nc, err := Connect(tc.cfg)
			if tc.wantErr {
				if err == nil {
					nc.Close()
					t.Fatal("Connect succeeded, want an error")
				}
				for _, secret := range []string{"wrong-pw", "hunter2-pw"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q leaks a password", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			workertest.WaitFor(t, 10*time.Second, "the \"NATS connected\" log line", func() bool { return strings.Contains(logs.String(), "NATS connected") })
			nc.Close()
			for _, secret := range []string{"hunter2-pw", "tok-s3cret", string(seed)} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("logs leak a secret: %s", logs.String())
				}
			}
		})
	}
}

func TestConnConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  ConnConfig
	}{
		{"two methods", ConnConfig{User: "u", Password: "p", Token: "t"}},
		{"password without user", ConnConfig{Password: "p"}},
		{"cert without key", ConnConfig{TLSCertFile: "c.pem"}},
		{"negative timeout", ConnConfig{ConnectTimeout: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if !errors.Is(err, ErrConnConfig) {
				t.Fatalf("Validate = %v, want ErrConnConfig", err)
			}
			if strings.Contains(err.Error(), "p\"") {
				t.Errorf("error mentions a secret: %v", err)
			}
		})
	}
	if err := (ConnConfig{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ given, want string }{
		{"nats://u:p@h:4222", "nats://%2A%2A%2A@h:4222"},
		{"nats://h:4222", "nats://h:4222"},
	}
	for _, tc := range tests {
		got := redactURL(tc.given)
		if strings.Contains(got, ":p@") || (tc.want == "nats://h:4222" && got != tc.want) {
			t.Errorf("redactURL(%q) = %q", tc.given, got)
		}
	}
}
