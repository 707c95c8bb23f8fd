// Package auth gives the Salesforce REST client its access tokens: it
// loads the integration accounts, runs the OAuth flows, and keeps one
// refreshing token per account for the whole worker fleet.
//
// In the flow of a job it sits beside blocks/salesforce: the client asks a
// [TokenSource] for a token before each call and, when Salesforce answers
// 401 INVALID_SESSION_ID, calls [TokenSource.Invalidate] with the token that
// failed, asks again and retries once. Nothing here imports the client; a
// *TokenSource satisfies its TokenSource and TokenInvalidator interfaces.
//
// # Configuring accounts
//
// Accounts come from a JSON file (see testdata/accounts.json):
//
//	{"accounts": [
//	  {"name": "prod", "default": true,
//	   "login_url": "https://login.salesforce.com",
//	   "client_id": "3MVG9...", "client_secret": "env:SF_PROD_SECRET",
//	   "flow": "web_server", "api_version": "66.0",
//	   "scopes": ["api", "refresh_token", "offline_access"],
//	   "redirect_url": "http://localhost:1717/oauth/callback",
//	   "session_timeout": "2h"},
//	  {"name": "backoffice", "login_url": "https://acme.my.salesforce.com",
//	   "client_id": "3MVG9...", "client_secret": "file:/run/secrets/sf_backoffice",
//	   "flow": "client_credentials"}]}
//
// login_url is https://login.salesforce.com (production),
// https://test.salesforce.com (sandbox) or the org's My Domain URL.
// client_secret and refresh_token take "env:VAR", "file:PATH" or a literal.
// flow defaults to web_server, api_version to 66.0, scopes to
// "api refresh_token offline_access", redirect_url to
// http://localhost:1717/oauth/callback; session_timeout is unset by default.
// One account is the default (implicitly when there is only one); a job that
// names no account uses it, a name that matches none fails with
// UNKNOWN_ACCOUNT.
//
// Every setting can be overridden by SFBLOCKS_ACCOUNT_<NAME>_<FIELD>, NAME
// upper-cased with '-' as '_' (SFBLOCKS_ACCOUNT_PROD_CLIENT_SECRET,
// ..._LOGIN_URL, ..._CLIENT_ID, ..._FLOW, ..._API_VERSION, ..._SCOPES
// (space separated), ..._REDIRECT_URL, ..._SESSION_TIMEOUT,
// ..._REFRESH_TOKEN, ..._DEFAULT); SFBLOCKS_ACCOUNTS="a,b" adds accounts
// defined by environment alone and SFBLOCKS_DEFAULT_ACCOUNT picks the
// default. [LoadConfig] reports every problem at once, naming the account,
// the field and the fix (INVALID_CONFIG).
//
// # Which flow when
//
// web_server: an admin runs `sfblocks authorize --account NAME` once. It
// prints [Authorizer.AuthCodeURL] (PKCE S256, a random state), receives the
// callback on a local listener ([Authorizer.ServeCallback]) or takes the
// redirect URL pasted from the browser on a headless host
// ([Authorizer.ExchangeRedirectURL]), checks the state, exchanges the code
// with its verifier and stores the refresh token. From then on workers use
// the refresh_token grant. Use it when the integration acts as a named
// user, or when the org does not allow the client credentials flow.
//
// client_credentials: the consumer key and secret are exchanged directly,
// for the app's run-as user, at the org's My Domain URL (login.salesforce.com
// answers invalid_grant "request not supported on this domain"). No
// authorize step, no refresh token. Use it for server-to-server
// integrations where the org admin has enabled the flow.
//
// # How the fleet-wide cache works
//
// Salesforce tokens carry no expires_in: a token is used until Salesforce
// rejects it. A [Cache] holds one token per account per process; concurrent
// Token calls share one fetch (singleflight). Invalidate(failed) marks
// exactly that token bad, never a newer one another request already got.
// With session_timeout set the cache also refreshes ahead, at 90% of it.
//
// Across processes the token lives in a JetStream key-value bucket
// ([KVStore], bucket "sfblocks_tokens"): "token.<account>" holds the access
// token, instance URL and current refresh token in one AES-256-GCM sealed
// value; "lease.<account>" is the refresh lease. A worker that needs a new
// token first reads the bucket (another worker may already have one);
// otherwise it takes the lease, reads again, and only then calls
// Salesforce. Others wait on a KV watch of the lease. So with N workers and
// M requests in flight across an expiry, Salesforce sees one token request.
//
// The lease cannot be outlived. It is created with a per-key TTL
// (jetstream.KeyTTL; the bucket has LimitMarkerTTL), so the NATS server
// ends it by its own clock, and workers whose clocks are minutes apart
// never hold it together; a dead holder blocks the others for at most the
// TTL (30 s) after its last renewal. The holder renews it every third of
// the TTL while it holds it (a revision-checked write with a fresh TTL),
// bounds each token request by [CacheOptions.RequestTimeout] (20 s), and
// gives the request up as soon as it can no longer prove it holds the lease
// ([Lease.Lost]), before the server can hand the lease to anyone else.
//
// A rotated refresh token is never lost. The refresh's result is written
// before anyone uses it, revision-checked. Records carry the authorization
// they descend from and a generation that counts rotations
// ([Record.AuthID], [Record.Generation]): when the write meets another one,
// a newer record (a new authorization, a later rotation, a fresh token
// another worker stored) is kept, while a refusal of the refresh token this
// refresh replaced is overwritten; a refusal is likewise never written over
// a newer record. When the store cannot be written, the worker logs an
// error (it holds the only copy), keeps handing out the new access token,
// and keeps retrying the write, in the background after the fetch's
// deadline, still holding the lease so that nobody presents the replaced
// token meanwhile.
//
// invalid_grant "token request is already being processed", 5xx and
// network errors are transient (AUTH_UNAVAILABLE) and retried with backoff
// a few times within the fetch. Refusals that may heal are AUTH_RETRYING:
// a client_credentials grant refused other than for a wrong secret or host
// (Salesforce answers invalid_grant "no client credentials user enabled"
// until a policy change has propagated, up to 10 minutes), and any 403 or
// answer without an OAuth error code (a proxy, a firewall). They are
// recorded in the store with a count, and the fleet sends the next request
// only after a backoff ([CacheOptions.RefusalBackoff], 30 s doubling to
// 5 min), so about one request per step; [TokenSource.State] says
// "retrying" with the time. "expired access/refresh token", "authentication
// failure" (a revoked or expired refresh token) and invalid_client (a wrong
// consumer key or secret) are final (AUTH_FAILED): the error says to run
// `sfblocks authorize --account NAME` again or to fix the key/secret, and
// the refused credential is marked in the store so no worker presents it
// again until a new authorization replaces it. [ClearRefusal] (`sfblocks
// accounts reset NAME`) removes either mark on purpose. Use [IsTransient]
// or errors.Is with the Err* sentinels to tell them apart.
//
// # Secrets
//
// Tokens at rest are encrypted with the key in SFBLOCKS_TOKEN_KEY (base64 of
// 32 bytes; `openssl rand -base64 32`) or SFBLOCKS_TOKEN_KEY_FILE, the same
// on every worker ([CipherFromEnv]). SFBLOCKS_TOKEN_KEY_PREVIOUS (or _FILE)
// adds keys a worker opens tokens with but never seals with
// ([Cipher.WithPrevious]); stores re-seal what they open with one, so the
// key rotates without re-authorizing anything. A worker whose keys open
// none of the fleet's records finds out at start ([Cache.CheckStore]),
// logs one error naming the fix, is not ready ([Cache.Ready]), and fails
// those accounts' tokens with TOKEN_KEY_MISMATCH, which is final. A single worker without NATS may keep
// them in a directory instead ([NewFileStore]). Without a key, use [NewMemoryStore]:
// tokens stay in memory, each worker refreshes on its own, and web_server
// accounts need refresh_token in the config. [GenerateKey] makes a throwaway
// key for the embedded development mode. Consumer secrets, tokens, codes and
// verifiers are [Secret] values, which print, marshal and log as
// "[redacted]"; no log line or error of this package carries one.
//
// A worker that dies (or is cut off from NATS for longer than the lease
// TTL) after Salesforce answered a rotating refresh but before the new
// refresh token was stored loses that token; the next refresh then presents
// the old one, Salesforce revokes the family, and the account needs
// `sfblocks authorize` again. The same holds for a token request given up
// after Salesforce processed it. Without rotation (Salesforce's default)
// either costs nothing.
package auth
