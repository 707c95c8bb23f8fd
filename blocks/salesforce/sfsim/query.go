package sfsim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
)

// Query batch sizes, as Salesforce documents for Sforce-Query-Options.
const (
	defaultBatchSize = 2000
	minBatchSize     = 200
	maxBatchSize     = 2000
)

// queryResponse is the body of query, queryAll and their next pages.
type queryResponse struct {
	TotalSize      int             `json:"totalSize"`
	Done           bool            `json:"done"`
	NextRecordsURL string          `json:"nextRecordsUrl,omitempty"`
	Records        []*simdb.Record `json:"records"`
}

// cursor is an open query locator: the full result and the batch size.
type cursor struct {
	id       string
	version  string
	total    int
	records  []*simdb.Record
	batch    int
	lastUsed time.Time
}

// cursorStore keeps open query locators, releasing the oldest past the cap
// and those unused for longer than the timeout.
type cursorStore struct {
	mu      sync.Mutex
	max     int
	timeout time.Duration
	seq     int
	open    map[string]*cursor
	order   []string // oldest first
}

func newCursorStore(max int, timeout time.Duration) *cursorStore {
	return &cursorStore{max: max, timeout: timeout, open: map[string]*cursor{}}
}

func (cs *cursorStore) add(c *cursor) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.seq++
	c.id = sfID("01g", strconv.Itoa(cs.seq))
	cs.open[c.id] = c
	cs.order = append(cs.order, c.id)
	for len(cs.order) > cs.max {
		delete(cs.open, cs.order[0])
		cs.order = cs.order[1:]
	}
}

func (cs *cursorStore) get(id string, now time.Time) (*cursor, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c, ok := cs.open[id]
	if !ok {
		return nil, false
	}
	if now.Sub(c.lastUsed) > cs.timeout {
		cs.removeLocked(id)
		return nil, false
	}
	c.lastUsed = now
	return c, true
}

func (cs *cursorStore) removeLocked(id string) {
	delete(cs.open, id)
	for i, v := range cs.order {
		if v == id {
			cs.order = append(cs.order[:i], cs.order[i+1:]...)
			break
		}
	}
}

func (cs *cursorStore) remove(id string) {
	cs.mu.Lock()
	cs.removeLocked(id)
	cs.mu.Unlock()
}

// batchSize reads Sforce-Query-Options: batchSize=N. Salesforce treats it as
// a hint within 200..2000, so values outside are clamped.
func batchSize(r *http.Request) int {
	for _, opt := range strings.Split(r.Header.Get("Sforce-Query-Options"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(opt), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "batchSize") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return defaultBatchSize
		}
		return min(max(n, minBatchSize), maxBatchSize)
	}
	return defaultBatchSize
}

func (s *Server) query(w http.ResponseWriter, r *http.Request, c *reqCtx, all bool) {
	kind := KindQuery
	if all {
		kind = KindQueryAll
	}
	s.countCall(kind)
	q := r.URL.Query().Get("q")
	if q == "" {
		// Salesforce answers a query without q this way.
		writeErrors(w, http.StatusBadRequest, apiError{Code: "MALFORMED_QUERY", Message: "A query string has to be specified"})
		return
	}
	res, err := s.db.Query(q, simdb.QueryOptions{IncludeDeleted: all, APIVersion: c.version})
	if err != nil {
		writeDBError(w, err)
		return
	}
	cur := &cursor{
		version:  c.version,
		total:    res.TotalSize,
		records:  res.Records,
		batch:    batchSize(r),
		lastUsed: s.opts.Now(),
	}
	s.writePage(w, cur, 0, true)
}

// writePage answers the batch of cur starting at offset, opening a locator
// when more remain (first page) and releasing it after the last page.
func (s *Server) writePage(w http.ResponseWriter, cur *cursor, offset int, first bool) {
	end := min(offset+cur.batch, len(cur.records))
	resp := queryResponse{TotalSize: cur.total, Done: end >= len(cur.records), Records: cur.records[offset:end]}
	if resp.Records == nil {
		resp.Records = []*simdb.Record{}
	}
	if !resp.Done {
		if first {
			s.cursor.add(cur)
		}
		// Salesforce names "query" here even for queryAll results, whose
		// remaining pages still include the deleted records.
		resp.NextRecordsURL = "/services/data/v" + cur.version + "/query/" + cur.id + "-" + strconv.Itoa(end)
	} else if !first {
		s.cursor.remove(cur.id)
	}
	writeJSON(w, http.StatusOK, resp)
}

// queryMore answers GET query/{locator}-{offset} (or queryAll/..., which
// Salesforce also accepts).
func (s *Server) queryMore(w http.ResponseWriter, r *http.Request, c *reqCtx, locator string) {
	s.countCall(KindQueryMore)
	id, offStr, ok := strings.Cut(locator, "-")
	off, err := strconv.Atoi(offStr)
	bad := func() {
		writeErrors(w, http.StatusBadRequest, apiError{Code: "INVALID_QUERY_LOCATOR", Message: msgLocator})
	}
	if !ok || err != nil || off < 0 {
		bad()
		return
	}
	cur, found := s.cursor.get(id, s.opts.Now())
	if !found || off >= len(cur.records) {
		bad()
		return
	}
	s.writePage(w, cur, off, false)
}

// searchResponse is the body of search and parameterizedSearch.
type searchResponse struct {
	SearchRecords []*simdb.Record `json:"searchRecords"`
}

func writeSearch(w http.ResponseWriter, recs []*simdb.Record) {
	if recs == nil {
		recs = []*simdb.Record{}
	}
	writeJSON(w, http.StatusOK, searchResponse{SearchRecords: recs})
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	s.countCall(KindSearch)
	q := r.URL.Query().Get("q")
	if q == "" {
		writeErrors(w, http.StatusBadRequest, apiError{Code: "MALFORMED_SEARCH", Message: "No search term found. The search term must be enclosed in braces."})
		return
	}
	recs, err := s.db.Search(q, c.version)
	if err != nil {
		writeDBError(w, err)
		return
	}
	writeSearch(w, recs)
}

// paramSearchBody is the POST body of parameterizedSearch.
type paramSearchBody struct {
	Q            string   `json:"q"`
	In           string   `json:"in"`
	Fields       []string `json:"fields"`
	OverallLimit int      `json:"overallLimit"`
	DefaultLimit int      `json:"defaultLimit"`
	SObjects     []struct {
		Name   string   `json:"name"`
		Fields []string `json:"fields"`
		Where  string   `json:"where"`
		Limit  int      `json:"limit"`
	} `json:"sobjects"`
}

func (s *Server) parameterizedSearch(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	s.countCall(KindParameterizedSearch)
	var p simdb.ParamSearch
	defaultLimit := 0
	if r.Method == http.MethodPost {
		var body paramSearchBody
		if e := decodeBody(r, &body); e != nil {
			writeErrors(w, http.StatusBadRequest, *e)
			return
		}
		p = simdb.ParamSearch{Q: body.Q, In: body.In, Fields: body.Fields, OverallLimit: body.OverallLimit}
		for _, so := range body.SObjects {
			p.SObjects = append(p.SObjects, simdb.ParamSObject{Name: so.Name, Fields: so.Fields, Where: so.Where, Limit: so.Limit})
		}
		defaultLimit = body.DefaultLimit
	} else {
		q := r.URL.Query()
		p.Q, p.In = q.Get("q"), q.Get("in")
		p.Fields = splitList(q.Get("fields"))
		var err error
		if p.OverallLimit, err = intParam(q.Get("overallLimit")); err != nil {
			writeErrors(w, http.StatusBadRequest, apiError{Code: "INVALID_SEARCH", Message: "overallLimit must be an integer"})
			return
		}
		if defaultLimit, err = intParam(q.Get("defaultLimit")); err != nil {
			writeErrors(w, http.StatusBadRequest, apiError{Code: "INVALID_SEARCH", Message: "defaultLimit must be an integer"})
			return
		}
		var names []string
		for _, v := range q["sobject"] {
			names = append(names, splitList(v)...)
		}
		for _, name := range names {
			so := simdb.ParamSObject{Name: name, Fields: splitList(q.Get(name + ".fields")), Where: q.Get(name + ".where")}
			if so.Limit, err = intParam(q.Get(name + ".limit")); err != nil {
				writeErrors(w, http.StatusBadRequest, apiError{Code: "INVALID_SEARCH", Message: name + ".limit must be an integer"})
				return
			}
			p.SObjects = append(p.SObjects, so)
		}
	}
	if p.Q == "" {
		writeErrors(w, http.StatusBadRequest, apiError{Code: "MISSING_ARGUMENT", Message: "Missing argument: q"})
		return
	}
	if defaultLimit > 0 {
		for i := range p.SObjects {
			if p.SObjects[i].Limit == 0 {
				p.SObjects[i].Limit = defaultLimit
			}
		}
	}
	recs, err := s.db.ParameterizedSearch(p, c.version)
	if err != nil {
		writeDBError(w, err)
		return
	}
	writeSearch(w, recs)
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func intParam(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	return strconv.Atoi(v)
}

// jsonNumberToAny converts decoded json.Number values to float64,
// recursively, so simdb sees what encoding/json normally produces.
func jsonNumberToAny(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = jsonNumberToAny(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = jsonNumberToAny(e)
		}
		return x
	}
	return v
}
