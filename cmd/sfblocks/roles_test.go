package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/deploy"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// roleFlags are the connection flags of a process running as user of
// nats-roles.conf.
func roleFlags(ns *workertest.ConfigNATS, user string) []string {
	return []string{"--nats-url", ns.ClientURL(), "--nats-user", user, "--nats-password", workertest.RolePassword(user)}
}

// noViolations fails the test when the server logged a permissions
// violation: each role must have every permission its commands use.
func noViolations(t *testing.T, ns *workertest.ConfigNATS) {
	t.Helper()
	if v := ns.Violations(); len(v) > 0 {
		t.Errorf("the server logged %d permissions violations:\n%s", len(v), strings.Join(v, "\n"))
	}
}

// `sfblocks serve` runs as the worker role (in development mode, so with
// the simulator and the fleet's token store), a tenant's runtime sends
// jobs, and the operator runs status, dlq ls|show|replay|purge, fleet
// check|apply and $SRV discovery, all against nats-roles.conf, without a
// single permissions violation.
func TestServeAndOperatorCommandsUnderRoles(t *testing.T) {
	t.Parallel()
	ns := workertest.StartRolesNATS(t)
	startServe(t, append(roleFlags(ns, deploy.WorkerUser), "--sim-addr", "127.0.0.1:0",
		"--max-attempts", "2", "--retry-backoff", "20ms", "--max-retry-backoff", "50ms")...)
	ctx := context.Background()

	// The tenant: both paths, a permanent failure, and a job too large for
	// its dead letter to carry it (kept in the object store).
	tenant := workertest.ConnectAs(t, ns.Server, deploy.TenantUser("a"))
	c, err := client.New(tenant, client.WithTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Search(ctx, &sfblocks.SearchRequest{Query: "SELECT Id, Name FROM Contact WHERE Phone = '$(ANI)'",
		Variables: map[string]any{"ANI": "+1 415 555 0100"}})
	if err != nil || rep.First["Name"] != "Ada Byron" {
		t.Fatalf("sync search: %+v, %v", rep, err)
	}
	if rep, err := c.DoDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{Object: "Case", Fields: map[string]any{"Subject": "Callback"}}); err != nil || rep.ObjectID == "" {
		t.Fatalf("durable insert: %+v, %v", rep, err)
	}
	rep, _ = c.DoDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{ID: "contact-1", Object: "Contact", Fields: map[string]any{"FirstName": "Ada"}})
	if rep == nil || rep.Error == nil || rep.Error.SalesforceCode != "REQUIRED_FIELD_MISSING" {
		t.Fatalf("failing durable insert: %+v", rep)
	}
	tjs, _ := jetstream.New(tenant)
	big := &nats.Msg{Subject: sfblocks.JobsSubject(sfblocks.DefaultPrefix, sfblocks.Insert), Data: bytes.Repeat([]byte{0xff}, int(tenant.MaxPayload()-1024)),
		Header: nats.Header{sfblocks.HeaderJobID: []string{"poison-1"}}}
	if _, err := tjs.PublishMsg(ctx, big); err != nil {
		t.Fatal(err)
	}

	// The operator.
	op := func(args ...string) (int, string, string) {
		t.Helper()
		return runCmd(t, ctx, append(args, roleFlags(ns, deploy.OperatorUser)...)...)
	}
	workertest.WaitFor(t, 20*time.Second, "two dead letters in `dlq ls`", func() bool {
		code, out, _ := op("dlq", "ls", "--json")
		var got struct {
			DeadLetters []sfblocks.DeadLetter `json:"dead_letters"`
		}
		return code == 0 && json.Unmarshal([]byte(out), &got) == nil && len(got.DeadLetters) == 2
	})
	if code, out, errOut := op("dlq", "ls"); code != 0 || !strings.Contains(out, "SFBLOCKS_DLQ: 2 dead letters") {
		t.Errorf("dlq ls: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := op("dlq", "show", "contact-1")
	var dl sfblocks.DeadLetter
	if code != 0 || json.Unmarshal([]byte(out), &dl) != nil || dl.Error.Code != sfblocks.CodeSalesforceError {
		t.Fatalf("dlq show contact-1: %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := op("dlq", "show", "seq:"+strconv.FormatUint(dl.Seq, 10)); code != 0 || !strings.Contains(out, `"job_id": "contact-1"`) {
		t.Errorf("dlq show by sequence: %d\n%s", code, out)
	}
	// The poison job's payload is read back from the object store, then
	// skipped as the invalid job it is (a payload that cannot be read
	// says so instead).
	code, out, errOut = op("dlq", "replay", "poison-1", "--json")
	var sum client.ReplaySummary
	if code != 0 || json.Unmarshal([]byte(out), &sum) != nil || sum.Skipped != 1 || !strings.Contains(sum.Results[0].Error, "INVALID_REQUEST") {
		t.Errorf("dlq replay poison-1: %d %+v\n%s%s", code, sum, out, errOut)
	}
	fixed := filepath.Join(t.TempDir(), "fixed.json")
	if err := os.WriteFile(fixed, []byte(`{"object":"Contact","fields":{"FirstName":"Ada","LastName":"Lovelace"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := op("dlq", "replay", "contact-1", "--payload", fixed); code != 0 || !strings.Contains(out, "succeeded 1") {
		t.Errorf("dlq replay with a fixed payload: %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := op("dlq", "purge", "--all", "--yes"); code != 0 || !strings.Contains(out, "purged 1 dead letters") {
		t.Errorf("dlq purge: %d\n%s%s", code, out, errOut)
	}

	workertest.WaitFor(t, 20*time.Second, "the worker's status report", func() bool {
		code, out, _ := op("status", "--json")
		return code == 0 && strings.Contains(out, `"account": "dev"`)
	})
	if code, out, _ := op("status"); code != 0 || !regexp.MustCompile(`dev\s+\S+\s+closed\s+`).MatchString(out) {
		t.Errorf("status: %d\n%s", code, out)
	}
	if code, out, errOut := op("fleet", "check"); code != 0 || !strings.Contains(out, "match") {
		t.Errorf("fleet check: %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := op("fleet", "apply", "--ack-wait", "45s"); code != 0 || !strings.Contains(out, "updated consumer insert") {
		t.Errorf("fleet apply: %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := op("fleet", "check", "--ack-wait", "45s"); code != 0 {
		t.Errorf("fleet check after apply: %d\n%s%s", code, out, errOut)
	}

	// `nats micro ls` and `nats micro stats`, as the operator.
	opnc := workertest.ConnectAs(t, ns.Server, deploy.OperatorUser)
	for _, subject := range []string{"$SRV.PING", "$SRV.INFO.sfblocks", "$SRV.STATS.sfblocks"} {
		if m, err := opnc.Request(subject, nil, 5*time.Second); err != nil || !bytes.Contains(m.Data, []byte(`"name":"sfblocks"`)) {
			t.Errorf("%s: %v", subject, err)
		}
	}
	noViolations(t, ns)
}

// `sfblocks accounts check` as the operator: it gets a token through the
// fleet's token store (a client credentials account, and a web_server
// account whose refresh token was stored as `sfblocks authorize` stores
// it, with the operator's rights). Not parallel: the token key is in the
// environment (t.Setenv).
func TestAccountsCheckUnderOperatorRole(t *testing.T) {
	ns := workertest.StartRolesNATS(t)
	sim := workertest.StartSim(t, sfsim.Options{})
	cipher, key, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SFBLOCKS_TOKEN_KEY", key)
	t.Setenv("SIM_SECRET", sfsim.DefaultClientSecret)
	cfg := writeConfig(t,
		map[string]any{"name": "prod", "default": true, "login_url": sim.LoginURL(), "client_id": sfsim.DefaultClientID,
			"client_secret": "env:SIM_SECRET", "flow": "web_server"},
		map[string]any{"name": "backoffice", "login_url": sim.MyDomainURL(), "client_id": sfsim.DefaultClientID,
			"client_secret": "env:SIM_SECRET", "flow": "client_credentials"})

	opnc := workertest.ConnectAs(t, ns.Server, deploy.OperatorUser)
	js, _ := jetstream.New(opnc)
	ctx := context.Background()
	store, err := auth.NewKVStore(ctx, js, auth.KVStoreConfig{Cipher: cipher})
	if err != nil {
		t.Fatal(err)
	}
	seedRefreshToken(t, store, sim, "prod")

	code, out, errOut := runCmd(t, ctx, append([]string{"accounts", "check", "--config", cfg}, roleFlags(ns, deploy.OperatorUser)...)...)
	if code != 0 {
		t.Fatalf("accounts check: exit %d\n%s%s", code, out, errOut)
	}
	for _, re := range []string{`prod \(default\)\s+web_server\s+ok\s+\d+/15000`, `backoffice\s+client_credentials\s+ok\s+\d+/15000`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("accounts check output lacks %s:\n%s", re, out)
		}
	}
	// The tokens it got are in the store, for the workers.
	if rec, _, err := store.Load(ctx, "backoffice"); err != nil || rec == nil || rec.AccessToken == "" {
		t.Errorf("backoffice's token in the store: %+v, %v", rec, err)
	}
	noViolations(t, ns)
}

// The operator owns the fleet's settings: on a server no worker has used
// yet, `fleet apply` creates the streams, consumers and buckets, a worker
// started after it finds them as they are, and `fleet apply` then updates
// the streams, the consumers and the buckets.
func TestFleetApplyUnderOperatorRole(t *testing.T) {
	t.Parallel()
	ns := workertest.StartRolesNATS(t)
	ctx := context.Background()
	op := func(args ...string) (int, string, string) {
		t.Helper()
		return runCmd(t, ctx, append(args, roleFlags(ns, deploy.OperatorUser)...)...)
	}
	if code, out, errOut := op("fleet", "check"); code != 1 || !strings.Contains(errOut, "fleet apply") {
		t.Errorf("fleet check before any worker: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := op("fleet", "apply", "--ack-wait", "40s")
	for _, want := range []string{"created stream SFBLOCKS_JOBS", "created consumer search", "created consumer insert", "created bucket sfblocks_results",
		"created bucket sfblocks_attempts", "created bucket sfblocks_claims", "created stream SFBLOCKS_DLQ"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("fleet apply on an empty server: %d, no %q\n%s%s", code, want, out, errOut)
		}
	}
	startServe(t, append(roleFlags(ns, deploy.WorkerUser), "--sim-addr", "127.0.0.1:0", "--ack-wait", "40s")...)
	updated := []string{"--ack-wait", "50s", "--duplicate-window", "90s", "--dlq-max-age", "240h", "--results-ttl", "12h"}
	code, out, errOut = op(append([]string{"fleet", "apply"}, updated...)...)
	for _, want := range []string{"updated stream SFBLOCKS_JOBS", "updated stream SFBLOCKS_DLQ", "updated consumer search", "updated consumer insert",
		"updated bucket sfblocks_results", "updated bucket sfblocks_attempts"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("fleet apply: %d, no %q\n%s%s", code, want, out, errOut)
		}
	}
	if code, out, errOut := op(append([]string{"fleet", "check"}, updated...)...); code != 0 {
		t.Errorf("fleet check after apply: %d\n%s%s", code, out, errOut)
	}
	noViolations(t, ns)
}

// `sfblocks serve --replicas 3` on a three-node cluster whose nodes run
// the users of nats-roles.conf: what a cluster adds (the ledger's reads
// through each bucket's leader, the replica counts read from existing
// buckets, `fleet check|apply --replicas` of the shared buckets) needs no
// permission the roles lack. The tenant connects to another node than the
// worker.
func TestServeUnderRolesOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	t.Parallel()
	c := workertest.StartCluster(t, 3, workertest.WithRoles(t))
	flags := func(user string) []string {
		return []string{"--nats-url", strings.Join(c.URLs(), ","), "--nats-user", user, "--nats-password", workertest.RolePassword(user)}
	}
	startServe(t, append(flags(deploy.WorkerUser), "--replicas", "3", "--sim-addr", "127.0.0.1:0")...)
	ctx := context.Background()

	tenant := workertest.ConnectAs(t, c.Node(1).Server(), deploy.TenantUser("a"))
	cl, err := client.New(tenant, client.WithTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := cl.Search(ctx, &sfblocks.SearchRequest{Query: "SELECT Id, Name FROM Contact WHERE Phone = '$(ANI)'",
		Variables: map[string]any{"ANI": "+1 415 555 0100"}})
	if err != nil || rep.First["Name"] != "Ada Byron" {
		t.Fatalf("sync search: %+v, %v", rep, err)
	}
	first, err := cl.DoDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{ID: "case-1", Object: "Case", Fields: map[string]any{"Subject": "Callback"}})
	if err != nil || first.ObjectID == "" {
		t.Fatalf("durable insert: %+v, %v", first, err)
	}
	// The same job again, synchronously: answered from its kept result,
	// read through the results bucket's leader.
	again, err := cl.Insert(ctx, &sfblocks.InsertRequest{ID: "case-1", Object: "Case", Fields: map[string]any{"Subject": "Callback"}})
	if err != nil || again.ObjectID != first.ObjectID {
		t.Fatalf("the same insert again: %+v, %v; want the kept result %s", again, err, first.ObjectID)
	}

	op := func(args ...string) (int, string, string) {
		t.Helper()
		return runCmd(t, ctx, append(args, flags(deploy.OperatorUser)...)...)
	}
	workertest.WaitFor(t, 30*time.Second, "the worker's status report", func() bool {
		code, out, _ := op("status", "--json")
		return code == 0 && strings.Contains(out, `"account": "dev"`)
	})
	if code, out, errOut := op("fleet", "check", "--replicas", "3"); code != 0 || !strings.Contains(out, "match") {
		t.Errorf("fleet check --replicas 3: %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := op("fleet", "check", "--replicas", "1"); code != 1 || !strings.Contains(out+errOut, "bucket "+worker.DefaultBudgetBucket) {
		t.Errorf("fleet check --replicas 1 on an R3 fleet: %d, want the budget bucket among the differences\n%s%s", code, out, errOut)
	}
	if code, out, errOut := op("fleet", "apply", "--replicas", "3"); code != 0 {
		t.Errorf("fleet apply --replicas 3: %d\n%s%s", code, out, errOut)
	}
	if v := c.Violations(); len(v) > 0 {
		t.Errorf("the servers logged %d permissions violations:\n%s", len(v), strings.Join(v, "\n"))
	}
}
