// Package console is the operators' web console of an sfblocks fleet: the
// body of `sfblocks console` (and of `sfblocks serve --console-addr`). The
// command only turns its flags into a [Config] and serves [Console.Handler].
//
// # Where it stands in the flow
//
// The console is not on a job's path. It reads, through the same NATS
// connection an operator's commands use, what the fleet publishes about
// itself, and acts only through the Go client, as `sfblocks dlq` does:
//
//	workers ─▶ status bucket (worker.ReportStatus)        ─▶ Accounts page  (worker.ReadStatus)
//	        ─▶ budget bucket (worker.Budget)              ─▶ Accounts page  (worker.ReadBudget)
//	        ─▶ $SRV.INFO / $SRV.STATS (micro)             ─▶ Workers page   (sampled every 5 s, kept 10 min)
//	        ─▶ dead-letter stream                         ─▶ Dead letters   (client.ListDeadLetters, GetDeadLetter, DLQInfo)
//	        ─▶ results, attempts, claims buckets          ─▶ Job page       (client.Result, worker.ReadJobLedger)
//	console ─▶ PREFIX.jobs.BLOCK (client.ReplayDeadLetters), dead-letter deletes (client.PurgeDeadLetters)
//
// It never sees a secret: consumer secrets, access and refresh tokens stay
// in the workers and the token bucket, which the console does not read.
//
// # Pages
//
//   - / (Accounts): each account's circuit breaker and when it probes
//     again, its token state and, for a refused credential, the fix; its
//     daily API usage against the allocation and the reserve kept for
//     synchronous jobs, as a gauge; as each worker last reported them.
//   - /workers: the workers answering $SRV discovery, their jobs in
//     flight, jobs/s and mean job time per block over the last minutes.
//   - /dlq: the dead letters, filtered by block, account, code,
//     Salesforce code and time; retention and counts; replay or purge one,
//     a selection, or every dead letter the filter matches, with progress
//     and a summary (/actions/ID). /dlq/SEQ shows one envelope and replays
//     it with an edited payload.
//   - /jobs?block=B&account=A&id=ID: a job's kept result, attempts, lease
//     and dead letter.
//
// The Accounts, Workers and Dead letters pages refresh themselves every
// 5 s (web/static/console.js), the list not while dead letters are
// selected or a field has the focus; every page works without script.
//
// # Security
//
// Every page but /login needs a session, which /login opens in exchange for
// the operator token ([Config.Token]) and keeps in an HttpOnly,
// SameSite=Strict cookie. State-changing requests are POST only and carry
// the session's CSRF token, checked on the server, after Go's
// [net/http.CrossOriginProtection] has refused cross-origin browser
// requests (Origin and Sec-Fetch-Site). Pages are served with a Content
// Security Policy that allows scripts and styles from the console only (no
// inline script), and with frame, referrer and sniffing protections.
// Headers of dead letters that look like credentials (Authorization,
// Cookie, *token*, *secret*, *password*) are shown redacted.
package console
