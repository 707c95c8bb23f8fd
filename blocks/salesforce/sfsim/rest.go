package sfsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// reqCtx is what a data route needs to know about its request.
type reqCtx struct {
	version string   // "66.0"
	parts   []string // path segments after /services/data/vXX.X/
	sess    *session
}

// base is the version's URL prefix, "/services/data/v66.0".
func (c *reqCtx) base() string { return "/services/data/v" + c.version }

// serveData is the REST entry point: faults, then versions (no auth), then
// bearer auth, the daily limit, the version and the resource route.
func (s *Server) serveData(w http.ResponseWriter, r *http.Request) {
	admitted, done := s.admit()
	defer done()
	if s.applyFaults(w, r, false) {
		return
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/services/data"), "/")
	if rest == "" {
		// The versions list needs no session, as on Salesforce.
		if allow(w, r, http.MethodGet) {
			s.countCall(KindVersions)
			s.versions(w)
		}
		return
	}
	sess, ok := s.authenticate(r)
	if !ok {
		s.stats.add(func(st *Stats) { st.Unauthorized++ })
		writeErrors(w, http.StatusUnauthorized, apiError{Code: "INVALID_SESSION_ID", Message: msgSessionInvalid})
		return
	}
	if !admitted {
		s.stats.add(func(st *Stats) { st.ConcurrentLimitExceeded++ })
		writeErrors(w, http.StatusForbidden, apiError{Code: "REQUEST_LIMIT_EXCEEDED", Message: msgConcurrentLimit})
		return
	}
	if !s.chargeRequest(w) {
		s.stats.add(func(st *Stats) { st.LimitExceeded++ })
		writeErrors(w, http.StatusForbidden, apiError{Code: "REQUEST_LIMIT_EXCEEDED", Message: msgLimitExceeded})
		return
	}
	verSeg, tail, _ := strings.Cut(rest, "/")
	version, ok := s.servedVersion(verSeg)
	if !ok {
		s.countCall(KindOther)
		writeErrors(w, http.StatusNotFound, apiError{Code: "NOT_FOUND", Message: msgNotFound})
		return
	}
	c := &reqCtx{version: version, sess: sess}
	if tail != "" {
		c.parts = strings.Split(strings.TrimSuffix(tail, "/"), "/")
	}
	s.route(w, r, c)
}

// admit registers a REST request as running and reports whether the org
// had room for it: fewer than ConcurrentRequestLimit requests running for
// LongRequestThreshold or more. done unregisters it.
func (s *Server) admit() (ok bool, done func()) {
	now := time.Now()
	s.runMu.Lock()
	long := 0
	for e := s.running.Front(); e != nil && long < s.opts.ConcurrentRequestLimit; e = e.Next() {
		if now.Sub(e.Value.(time.Time)) < s.opts.LongRequestThreshold {
			break // oldest first: the rest are younger
		}
		long++
	}
	ok = long < s.opts.ConcurrentRequestLimit
	e := s.running.PushBack(now)
	s.runMu.Unlock()
	return ok, func() {
		s.runMu.Lock()
		s.running.Remove(e)
		s.runMu.Unlock()
	}
}

// authenticate reads "Authorization: Bearer tok" (or the older "OAuth tok").
func (s *Server) authenticate(r *http.Request) (*session, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || (!strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "OAuth")) {
		return nil, false
	}
	return s.lookupSession(strings.TrimSpace(tok))
}

// chargeRequest counts one request against the daily limit and sets
// Sforce-Limit-Info. It reports false, charging nothing, past the limit.
func (s *Server) chargeRequest(w http.ResponseWriter) bool {
	s.mu.Lock()
	used, limit := s.apiUsed, s.opts.DailyAPILimit
	ok := used < limit
	if ok {
		s.apiUsed++
		used++
	}
	s.mu.Unlock()
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", used, limit))
	return ok
}

// servedVersion parses "v66.0" and reports whether it is served.
func (s *Server) servedVersion(seg string) (string, bool) {
	v, ok := strings.CutPrefix(seg, "v")
	if !ok {
		return "", false
	}
	for _, have := range s.opts.APIVersions {
		if have == v {
			return v, true
		}
	}
	return "", false
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	if len(c.parts) == 0 {
		if allow(w, r, http.MethodGet) {
			s.countCall(KindResources)
			s.resources(w, c)
		}
		return
	}
	switch c.parts[0] {
	case "sobjects":
		s.routeSObjects(w, r, c)
		return
	case "query", "queryAll":
		if len(c.parts) == 1 {
			if allow(w, r, http.MethodGet) {
				s.query(w, r, c, c.parts[0] == "queryAll")
			}
			return
		}
		if len(c.parts) == 2 {
			if allow(w, r, http.MethodGet) {
				s.queryMore(w, r, c, c.parts[1])
			}
			return
		}
	case "search":
		if len(c.parts) == 1 {
			if allow(w, r, http.MethodGet) {
				s.search(w, r, c)
			}
			return
		}
	case "parameterizedSearch":
		if len(c.parts) == 1 {
			if allow(w, r, http.MethodGet, http.MethodPost) {
				s.parameterizedSearch(w, r, c)
			}
			return
		}
	case "limits":
		if len(c.parts) == 1 {
			if allow(w, r, http.MethodGet) {
				s.countCall(KindLimits)
				s.limits(w)
			}
			return
		}
	case "composite":
		if len(c.parts) == 2 && c.parts[1] == "sobjects" {
			if allow(w, r, http.MethodPost) {
				s.collectionsCreate(w, r, c)
			}
			return
		}
		if len(c.parts) == 4 && c.parts[1] == "sobjects" {
			if allow(w, r, http.MethodPatch) {
				s.collectionsUpsert(w, r, c, c.parts[2], c.parts[3])
			}
			return
		}
	}
	s.countCall(KindOther)
	writeErrors(w, http.StatusNotFound, apiError{Code: "NOT_FOUND", Message: msgNotFound})
}

// versionInfo is one element of GET /services/data/.
type versionInfo struct {
	Label   string `json:"label"`
	URL     string `json:"url"`
	Version string `json:"version"`
}

func (s *Server) versions(w http.ResponseWriter) {
	out := make([]versionInfo, 0, len(s.opts.APIVersions))
	for _, v := range s.opts.APIVersions {
		label, _ := versionLabel(v)
		out = append(out, versionInfo{Label: label, URL: "/services/data/v" + v, Version: v})
	}
	writeJSON(w, http.StatusOK, out)
}

// versionLabel names the release of an API version: 20.0 was Winter '11 and
// there are three releases a year (Spring, Summer, Winter), so 66.0 is
// Spring '26.
func versionLabel(v string) (string, bool) {
	major, ok := strings.CutSuffix(v, ".0")
	if !ok {
		return "", false
	}
	n, err := strconv.Atoi(major)
	if err != nil || n < 20 || n > 999 {
		return "", false
	}
	k := n - 20
	season := [...]string{"Winter", "Spring", "Summer"}[k%3]
	return fmt.Sprintf("%s '%02d", season, (11+k/3)%100), true
}

func defaultVersions() []string {
	var out []string
	for n := 31; n <= 66; n++ {
		out = append(out, fmt.Sprintf("%d.0", n))
	}
	return out
}

// resourceNames are the keys of GET /services/data/vXX.X/, a realistic subset.
var resourceNames = []string{
	"tooling", "metadata", "eclair", "folders", "prechatForms", "jsonxform", "chatter",
	"tabs", "appMenu", "quickActions", "queryAll", "commerce", "wave", "iot", "analytics",
	"search", "identity", "composite", "parameterizedSearch", "fingerprint", "theme", "nouns",
	"event", "serviceTemplates", "recent", "connect", "licensing", "limits", "process",
	"dedupe", "async-queries", "query", "jobs", "match", "localizedvalue", "mobile",
	"emailConnect", "consent", "tokenizer", "compactLayouts", "knowledgeManagement",
	"sobjects", "actions", "support",
}

func (s *Server) resources(w http.ResponseWriter, c *reqCtx) {
	out := make(map[string]string, len(resourceNames))
	for _, n := range resourceNames {
		out[n] = c.base() + "/" + n
	}
	// The identity resource lives on the login host, as on Salesforce.
	out["identity"] = idURL()
	writeJSON(w, http.StatusOK, out)
}

// limitInfo is one entry of GET limits.
type limitInfo struct {
	Max       int `json:"Max"`
	Remaining int `json:"Remaining"`
}

func (s *Server) limits(w http.ResponseWriter) {
	used, limit := s.APIUsage()
	remaining := max(limit-used, 0)
	out := map[string]limitInfo{
		"ConcurrentAsyncGetReportInstances": {200, 200},
		"ConcurrentSyncReportRuns":          {20, 20},
		"DailyApiRequests":                  {limit, remaining},
		"DailyAsyncApexExecutions":          {250000, 250000},
		"DailyBulkApiBatches":               {15000, 15000},
		"DailyBulkV2QueryFileStorageMB":     {976562, 976562},
		"DailyBulkV2QueryJobs":              {10000, 10000},
		"DailyDurableStreamingApiEvents":    {10000, 10000},
		"DailyGenericStreamingApiEvents":    {10000, 10000},
		"DailyStreamingApiEvents":           {10000, 10000},
		"DailyWorkflowEmails":               {390, 390},
		"DataStorageMB":                     {5, 5},
		"FileStorageMB":                     {20, 20},
		"HourlyAsyncReportRuns":             {1200, 1200},
		"HourlyDashboardRefreshes":          {200, 200},
		"HourlyDashboardResults":            {5000, 5000},
		"HourlyDashboardStatuses":           {999999999, 999999999},
		"HourlyODataCallout":                {10000, 10000},
		"HourlySyncReportRuns":              {500, 500},
		"HourlyTimeBasedWorkflow":           {50, 50},
		"MassEmail":                         {10, 10},
		"SingleEmail":                       {15, 15},
		"StreamingApiConcurrentClients":     {20, 20},
	}
	writeJSON(w, http.StatusOK, out)
}
