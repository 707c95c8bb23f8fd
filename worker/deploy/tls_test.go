package deploy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/deploy"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// testCA is a certificate authority made for one test: its certificate is
// ca.pem in dir.
type testCA struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// File is the CA's certificate (PEM).
	File string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{dir: t.TempDir(), cert: cert, key: key}
	ca.File = writePEM(t, ca.dir, "ca.pem", "CERTIFICATE", der)
	return ca
}

// issue signs a certificate for name, for a server (valid for 127.0.0.1
// and localhost) or a client, and returns its certificate and key files.
func (ca *testCA) issue(t *testing.T, name string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, ca.dir, name+".pem", "CERTIFICATE", der), writePEM(t, ca.dir, name+"-key.pem", "PRIVATE KEY", keyDER)
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startTLSRoles starts nats-roles.conf with the tls block its comment
// describes (verify: true), through a config file that includes it.
func startTLSRoles(t *testing.T, ca *testCA) *workertest.ConfigNATS {
	t.Helper()
	cert, key := ca.issue(t, "nats-server", true)
	dir := t.TempDir()
	roles, err := filepath.Rel(dir, workertest.RolesConfigFile(t))
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`include %q
tls {
  cert_file: %q
  key_file: %q
  ca_file: %q
  verify: true
  timeout: 2
}
`, roles, cert, key, ca.File)
	file := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	workertest.RolePassword(deploy.WorkerUser)
	return workertest.StartNATSConfig(t, file)
}

// TLS end to end: the server verifies client certificates; the worker
// connects through worker.ConnConfig's TLS files and runs both paths for a
// tenant that connects with its own certificate. A connection that cannot
// verify the server, or that the server cannot verify, fails saying why.
func TestTLSWithClientCertificates(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "sfblocks test CA")
	ns := startTLSRoles(t, ca)
	if url := ns.ClientURL(); !strings.HasPrefix(url, "tls://") {
		t.Fatalf("client URL %s: the server does not require TLS", url)
	}
	workerCert, workerKey := ca.issue(t, "sfblocks-worker", false)
	cfg := workerConn(ns)
	cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile = ca.File, workerCert, workerKey

	_, exec := simExecutor(t)
	startWorker(t, cfg, exec)
	tenantCert, tenantKey := ca.issue(t, "tenant-a", false)
	tenant := workertest.ConnectAs(t, ns.Server, deploy.TenantUser("a"), nats.RootCAs(ca.File), nats.ClientCert(tenantCert, tenantKey))
	if !tenant.TLSRequired() {
		t.Fatal("the tenant's connection is not TLS")
	}
	c, err := client.New(tenant)
	if err != nil {
		t.Fatal(err)
	}
	runBothPaths(t, c)

	other := newTestCA(t, "another CA")
	otherCert, otherKey := other.issue(t, "intruder", false)
	// With TLS 1.3 the client ends its handshake before the server has
	// checked the client's certificate: the server's alert either arrives
	// first, or the client's first write finds the connection closed.
	const noClientCert = "remote error: tls: certificate required|connection closed by remote after TLS handshake"
	tests := []struct {
		name   string
		change func(*worker.ConnConfig)
		// wantErr lists what the error may say, separated by |.
		wantErr string
	}{
		{"no CA: the server's certificate cannot be verified", func(c *worker.ConnConfig) { c.TLSCAFile = "" },
			"certificate signed by unknown authority"},
		{"the wrong CA", func(c *worker.ConnConfig) { c.TLSCAFile = other.File },
			"certificate signed by unknown authority"},
		// nats.go turns TLS on when the server requires it, and cannot
		// verify it without the CA.
		{"no TLS settings, nats://", func(c *worker.ConnConfig) {
			c.URLs = []string{strings.Replace(c.URLs[0], "tls://", "nats://", 1)}
			c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile = "", "", ""
		}, "certificate signed by unknown authority"},
		{"no client certificate", func(c *worker.ConnConfig) { c.TLSCertFile, c.TLSKeyFile = "", "" },
			noClientCert},
		// Go's TLS client offers only a certificate of a CA the server
		// names, so the server sees none.
		{"a client certificate of another CA", func(c *worker.ConnConfig) { c.TLSCertFile, c.TLSKeyFile = otherCert, otherKey },
			noClientCert},
		{"a CA file that does not exist", func(c *worker.ConnConfig) { c.TLSCAFile = filepath.Join(t.TempDir(), "nope.pem") },
			"nope.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bad := cfg
			bad.ConnectTimeout = 2 * time.Second
			tt.change(&bad)
			nc, err := worker.Connect(bad)
			if err == nil {
				nc.Close()
				t.Fatal("connected; want an error")
			}
			said := false
			for _, want := range strings.Split(tt.wantErr, "|") {
				said = said || strings.Contains(err.Error(), want)
			}
			if !said || !strings.Contains(err.Error(), "worker: connecting to NATS at ") {
				t.Errorf("error %q, want it to name the server and say %q", err, tt.wantErr)
			}
		})
	}
}
