package sfsim

import (
	"maps"
	"sync"
)

// API call kinds counted in [Stats.APICalls].
const (
	KindVersions            = "versions"            // GET /services/data/
	KindResources           = "resources"           // GET /services/data/vXX.X/
	KindDescribeGlobal      = "describeGlobal"      // GET sobjects
	KindSObjectInfo         = "sobject"             // GET sobjects/{Object}
	KindDescribe            = "describe"            // GET sobjects/{Object}/describe
	KindGet                 = "get"                 // GET sobjects/{Object}/{id}
	KindCreate              = "create"              // POST sobjects/{Object}
	KindUpdate              = "update"              // PATCH sobjects/{Object}/{id}
	KindDelete              = "delete"              // DELETE sobjects/{Object}/{id}
	KindUpsert              = "upsert"              // PATCH sobjects/{Object}/{Field}/{value}
	KindCollections         = "collections"         // POST composite/sobjects
	KindCollectionsUpsert   = "collectionsUpsert"   // PATCH composite/sobjects/{Object}/{Field}
	KindQuery               = "query"               // GET query?q=
	KindQueryAll            = "queryAll"            // GET queryAll?q=
	KindQueryMore           = "queryMore"           // GET query/{locator}
	KindSearch              = "search"              // GET search?q=
	KindParameterizedSearch = "parameterizedSearch" // GET/POST parameterizedSearch
	KindLimits              = "limits"              // GET limits
	KindOther               = "other"               // anything else under a version (404s, 405s)
)

// Stats is a snapshot of the simulator's counters, from [Server.Stats] or
// GET /_sim/stats. Counters start at zero and [Server.Reset] zeroes them.
type Stats struct {
	// APICalls counts authenticated REST calls that reached routing, by kind
	// (the Kind* constants: "query", "queryAll", "queryMore", "search",
	// "parameterizedSearch", "create", "upsert", "collections", "limits",
	// "describe", "get", "versions", ...). Calls refused for auth, limits or
	// injected faults are not in here.
	APICalls map[string]int64 `json:"apiCalls"`
	// TokenGrants counts successful token grants by grant_type
	// ("authorization_code", "refresh_token", "client_credentials").
	TokenGrants map[string]int64 `json:"tokenGrants"`
	// TokenRequests counts every POST to the token endpoint, failed ones too.
	TokenRequests int64 `json:"tokenRequests"`
	// TokenErrors counts token requests answered with an OAuth error, by error code.
	TokenErrors map[string]int64 `json:"tokenErrors"`
	// AuthorizeRequests counts GETs of the authorize endpoint.
	AuthorizeRequests int64 `json:"authorizeRequests"`
	// SessionsIssued counts access tokens minted (grants and IssueToken).
	SessionsIssued int64 `json:"sessionsIssued"`
	// RecordsCreated counts records inserted by create, upsert and
	// collections, whether or not the client got the answer.
	RecordsCreated int64 `json:"recordsCreated"`
	// RecordsCreatedUnanswered counts the records among RecordsCreated whose
	// write lost its answer to the commit-then-drop fault
	// ([FaultConfig.CommitThenDrop]): records the client cannot know it made.
	RecordsCreatedUnanswered int64 `json:"recordsCreatedUnanswered"`
	// Unauthorized counts data calls answered 401 INVALID_SESSION_ID.
	Unauthorized int64 `json:"unauthorized"`
	// LimitExceeded counts data calls answered 403 REQUEST_LIMIT_EXCEEDED
	// for the daily limit.
	LimitExceeded int64 `json:"limitExceeded"`
	// ConcurrentLimitExceeded counts data calls answered 403
	// REQUEST_LIMIT_EXCEEDED for the concurrent-request limit.
	ConcurrentLimitExceeded int64 `json:"concurrentLimitExceeded"`
	// FaultsInjected counts answers the fault injector produced (error rate,
	// outage, UNABLE_TO_LOCK_ROW, commit-then-drop, upsert race, refused
	// client credentials), by kind:
	// "error", "outage503", "outageRefuse", "lockRow", "commitThenDrop"
	// (committed, connection closed), "commitThenWithhold" (committed, answer
	// held until the client gave up or the delay passed, then closed),
	// "upsertRace" (400 DUPLICATE_VALUE instead of an update) and
	// "refuseClientCredentials" (a client_credentials grant refused).
	FaultsInjected map[string]int64 `json:"faultsInjected"`
	// FamiliesRevoked counts token families revoked because a rotated-out
	// refresh token was presented again.
	FamiliesRevoked int64 `json:"familiesRevoked"`
}

type statsCounter struct {
	mu sync.Mutex
	s  Stats
}

func (c *statsCounter) init() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s = Stats{
		APICalls:       map[string]int64{},
		TokenGrants:    map[string]int64{},
		TokenErrors:    map[string]int64{},
		FaultsInjected: map[string]int64{},
	}
}

func (c *statsCounter) reset() { c.init() }

func (c *statsCounter) add(f func(*Stats)) {
	c.mu.Lock()
	f(&c.s)
	c.mu.Unlock()
}

func (c *statsCounter) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.s
	out.APICalls = maps.Clone(c.s.APICalls)
	out.TokenGrants = maps.Clone(c.s.TokenGrants)
	out.TokenErrors = maps.Clone(c.s.TokenErrors)
	out.FaultsInjected = maps.Clone(c.s.FaultsInjected)
	return out
}

// Stats returns a snapshot of the counters; see [Stats].
func (s *Server) Stats() Stats { return s.stats.snapshot() }

func (s *Server) countCall(kind string) {
	s.stats.add(func(st *Stats) { st.APICalls[kind]++ })
}
