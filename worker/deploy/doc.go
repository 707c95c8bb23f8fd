// Package deploy ships sfblocks' least-privilege NATS deployment:
// nats-roles.conf, a nats-server configuration with one user per role, and
// the names a process needs to use it.
//
//	nats-server -c worker/deploy/nats-roles.conf
//
// The roles (README, "Security"):
//
//   - [WorkerUser], for `sfblocks serve`: the micro endpoints in the fleet's
//     queue group and $SRV discovery, the JetStream API of its own streams,
//     consumers, KV buckets and object store (create when missing, never
//     update or delete what the fleet shares), acks, its buckets' subjects,
//     replies to inboxes, dead letters.
//   - [OperatorUser], for `sfblocks status`, `dlq ls|show|replay|purge`,
//     `fleet check|apply`, `accounts check` and `authorize`.
//   - one user per tenant ([TenantUser]), for a scenario runtime: publish
//     jobs to sfblocks.search, sfblocks.insert, sfblocks.jobs.search and
//     sfblocks.jobs.insert, and subscribe to its own inbox prefix
//     ([TenantInboxPrefix]) only. No JetStream API, no bucket, no dead
//     letter.
//
// Passwords come from the nats-server process's environment
// ([PasswordEnv]); the file holds none. The tests in this package start an
// embedded nats-server from the file itself and run the real worker,
// client and commands against it under each role.
package deploy

import "strings"

// Users of nats-roles.conf.
const (
	// WorkerUser is the user of `sfblocks serve` (--nats-user).
	WorkerUser = "sfblocks-worker"
	// OperatorUser is the user of the operator's sfblocks commands.
	OperatorUser = "sfblocks-operator"
)

// TenantInboxRoot is the subject under which every tenant's inbox prefix
// lies. Worker and operator may not subscribe under it, and each tenant
// only under its own [TenantInboxPrefix].
const TenantInboxRoot = "_INBOX.tenant"

// TenantUser is the user of tenant's scenario runtime, e.g. "tenant-a".
func TenantUser(tenant string) string { return "tenant-" + tenant }

// TenantInboxPrefix is the inbox prefix tenant's runtime must connect with
// (nats.CustomInboxPrefix), e.g. "_INBOX.tenant.a": the only subjects its
// user may subscribe to are under it, and the worker publishes every reply
// to the reply subject the runtime chose, which is under it.
func TenantInboxPrefix(tenant string) string { return TenantInboxRoot + "." + tenant }

// PasswordEnv is the environment variable of the nats-server process that
// holds user's password, e.g. SFBLOCKS_NATS_WORKER_PASSWORD for
// [WorkerUser] and SFBLOCKS_NATS_TENANT_A_PASSWORD for tenant-a.
func PasswordEnv(user string) string {
	name := strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(user, "sfblocks-"), "-", "_"))
	return "SFBLOCKS_NATS_" + name + "_PASSWORD"
}
