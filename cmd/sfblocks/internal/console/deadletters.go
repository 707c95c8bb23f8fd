package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/client"
)

// filterForm is the dead-letter filter as the form and the URL carry it.
type filterForm struct {
	Block, Account, Code, SalesforceCode, Since, Until string
}

// filterFields are the query keys of a filterForm, in form order.
var filterFields = []string{"block", "account", "code", "sf_code", "since", "until"}

var (
	codeRe    = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	maxFilter = 256 // characters of one filter field
)

// codes are the error codes offered by the filter.
var codes = []sfblocks.Code{sfblocks.CodeInvalidRequest, sfblocks.CodeUnknownAccount, sfblocks.CodeAuthFailed, sfblocks.CodeSalesforceError,
	sfblocks.CodeRateLimited, sfblocks.CodeSalesforceUnavailable, sfblocks.CodeTimeout, sfblocks.CodeInternal}

// parseFilter reads the filter from values (a query or a form) and
// checks it; the error says which field is wrong and how to write it.
func parseFilter(v url.Values, now time.Time) (filterForm, client.DLQFilter, error) {
	ff := filterForm{Block: strings.TrimSpace(v.Get("block")), Account: strings.TrimSpace(v.Get("account")),
		Code: strings.ToUpper(strings.TrimSpace(v.Get("code"))), SalesforceCode: strings.ToUpper(strings.TrimSpace(v.Get("sf_code"))),
		Since: strings.TrimSpace(v.Get("since")), Until: strings.TrimSpace(v.Get("until"))}
	f := client.DLQFilter{Block: sfblocks.Block(ff.Block), Account: ff.Account, Code: sfblocks.Code(ff.Code), SalesforceCode: ff.SalesforceCode}
	for _, s := range []string{ff.Block, ff.Account, ff.Code, ff.SalesforceCode, ff.Since, ff.Until} {
		if len(s) > maxFilter {
			return ff, f, fmt.Errorf("a filter field has %d characters; at most %d are read", len(s), maxFilter)
		}
	}
	if ff.Block != "" && !slices.Contains(sfblocks.Blocks(), f.Block) {
		return ff, f, fmt.Errorf("block %q: choose search or insert, or leave it empty for both", ff.Block)
	}
	if ff.Code != "" && !slices.Contains(codes, f.Code) {
		return ff, f, fmt.Errorf("code %q is not an sfblocks error code: choose one of the list (INVALID_REQUEST, AUTH_FAILED, SALESFORCE_ERROR...); Salesforce's own codes go in the Salesforce code field", ff.Code)
	}
	if ff.SalesforceCode != "" && !codeRe.MatchString(ff.SalesforceCode) {
		return ff, f, fmt.Errorf("the Salesforce code %q: write it as Salesforce does, in capitals and underscores (REQUIRED_FIELD_MISSING, UNABLE_TO_LOCK_ROW)", ff.SalesforceCode)
	}
	var err error
	if f.Since, err = parseWhen("from", ff.Since, now); err != nil {
		return ff, f, err
	}
	if f.Until, err = parseWhen("until", ff.Until, now); err != nil {
		return ff, f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return ff, f, fmt.Errorf("the time range from %s until %s is empty: the start must come before the end", when(f.Since), when(f.Until))
	}
	return ff, f, nil
}

// parseWhen reads a time: a duration ago ("24h", "90m"), RFC 3339, or the
// browser's datetime-local form ("2026-03-02T09:00"), taken as UTC.
func parseWhen(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: give a duration ago (24h, 90m) or a UTC time (2026-03-02T09:00 or 2026-03-02T09:00:00Z)", name, s)
}

// values writes the filter back as query values (empty fields left out).
func (ff filterForm) values() url.Values {
	v := url.Values{}
	for i, s := range []string{ff.Block, ff.Account, ff.Code, ff.SalesforceCode, ff.Since, ff.Until} {
		if s != "" {
			v.Set(filterFields[i], s)
		}
	}
	return v
}

// describe says in words what the filter selects.
func (ff filterForm) describe() string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+" "+v)
		}
	}
	add("block", ff.Block)
	if ff.Account != "" {
		add("account", strconv.Quote(ff.Account))
	}
	add("code", ff.Code)
	add("Salesforce code", ff.SalesforceCode)
	add("stored from", ff.Since)
	add("stored until", ff.Until)
	if len(parts) == 0 {
		return "every dead letter"
	}
	return "dead letters with " + strings.Join(parts, ", ")
}

// Paging of the dead-letter list.
const (
	defaultPerPage = 50
	maxPerPage     = 500
)

// row is one dead letter in the list.
type row struct {
	DL     *sfblocks.DeadLetter
	JobURL string
}

// deadLettersPageData is the data of deadletters.html.
type deadLettersPageData struct {
	Filter       filterForm
	Query        url.Values // the filter, for links
	Describe     string
	Codes        []sfblocks.Code
	Info         *client.DLQInfo
	NoStream     bool
	Error        string // a bad filter, shown above the form
	Matched      int
	Rows         []row
	Page, Pages  int
	Per          int
	First, Last  int // 1-based positions of the rows shown
	FilterActive bool
	// State is the stream's state when read (see deadLettersState).
	State string
}

func (c *Console) deadLettersPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ff, flt, err := parseFilter(q, c.now())
	data := deadLettersPageData{Filter: ff, Query: ff.values(), Describe: ff.describe(), Codes: codes, FilterActive: !flt.Empty()}
	if err != nil {
		data.Error = err.Error()
		c.render(w, r, http.StatusBadRequest, "deadletters", "Dead letters", "dlq", data)
		return
	}
	page, per, err := parsePaging(q)
	if err != nil {
		data.Error = err.Error()
		c.render(w, r, http.StatusBadRequest, "deadletters", "Dead letters", "dlq", data)
		return
	}
	ctx, cancel := c.readCtx(r)
	defer cancel()
	info, err := c.client.DLQInfo(ctx)
	if errors.Is(err, client.ErrNoDLQ) {
		data.NoStream, data.State = true, dlqState{}.key()
		c.render(w, r, http.StatusOK, "deadletters", "Dead letters", "dlq", data)
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, fmt.Sprintf("Could not read the dead-letter stream: %v. Check that NATS is reachable and that the console's NATS user has the operator role's rights.", err))
		return
	}
	data.Info = info
	data.State = dlqState{Messages: info.Messages, LastSeq: info.LastSeq}.key()
	// Every dead letter the filter selects is read, so that the count is
	// exact and "everything the filter matches" means just that; the page
	// shows a slice of them, newest first.
	dls, err := c.client.ListDeadLetters(ctx, flt)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, fmt.Sprintf("Could not list the dead letters: %v. With a very large stream, narrow the time range.", err))
		return
	}
	slices.Reverse(dls)
	data.Matched, data.Per = len(dls), per
	data.Pages = max(1, (len(dls)+per-1)/per)
	data.Page = min(page, data.Pages)
	lo := (data.Page - 1) * per
	hi := min(len(dls), lo+per)
	for _, dl := range dls[lo:hi] {
		data.Rows = append(data.Rows, row{DL: dl, JobURL: jobURL(dl)})
	}
	if hi > lo {
		data.First, data.Last = lo+1, hi
	}
	c.render(w, r, http.StatusOK, "deadletters", "Dead letters", "dlq", data)
}

// dlqState is what /dlq/state answers: enough to tell whether the stream
// changed, so that the list's page re-reads the stream only then.
type dlqState struct {
	Messages uint64 `json:"messages"`
	LastSeq  uint64 `json:"last_seq"`
}

// key writes the state as the list page carries it (data-state).
func (s dlqState) key() string { return fmt.Sprintf("%d:%d", s.Messages, s.LastSeq) }

// deadLettersState answers the stream's state, cheaply (one stream info):
// the list refreshes itself only when it changed, rather than reading
// every dead letter every few seconds.
func (c *Console) deadLettersState(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.readCtx(r)
	defer cancel()
	var st dlqState
	info, err := c.client.DLQInfo(ctx)
	switch {
	case errors.Is(err, client.ErrNoDLQ):
	case err != nil:
		http.Error(w, `{"error":"the dead-letter stream could not be read"}`, http.StatusBadGateway)
		return
	default:
		st = dlqState{Messages: info.Messages, LastSeq: info.LastSeq}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"state": st.key()})
}

func parsePaging(q url.Values) (page, per int, err error) {
	page, per = 1, defaultPerPage
	if s := q.Get("page"); s != "" {
		if page, err = strconv.Atoi(s); err != nil || page < 1 {
			return 0, 0, fmt.Errorf("page %q: give a page number from 1", s)
		}
	}
	if s := q.Get("per"); s != "" {
		if per, err = strconv.Atoi(s); err != nil || per < 1 || per > maxPerPage {
			return 0, 0, fmt.Errorf("per %q: give a number of rows per page from 1 to %d", s, maxPerPage)
		}
	}
	return page, per, nil
}

// jobURL is the Job page of a dead letter's job. The account the job
// named is in its dead-letter subject's key; the envelope's Account is the
// one that ran it, which is the same unless the job named none.
func jobURL(dl *sfblocks.DeadLetter) string {
	v := url.Values{"block": {string(dl.Block)}, "id": {dl.JobID}}
	if acct, ok := namedAccount(dl); ok && acct != "" {
		v.Set("account", acct)
	}
	return "/jobs?" + v.Encode()
}

// namedAccount is the account as the job named it, read from its payload.
func namedAccount(dl *sfblocks.DeadLetter) (string, bool) {
	var p struct {
		Account string `json:"account"`
	}
	if len(dl.Payload) == 0 || json.Unmarshal(dl.Payload, &p) != nil {
		return "", false
	}
	return p.Account, true
}

// parseSeq reads a dead letter's stream sequence.
func parseSeq(s string) (uint64, error) {
	seq, err := strconv.ParseUint(strings.TrimPrefix(s, "seq:"), 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("%q is not a dead letter's sequence: a sequence is a positive number (the SEQ column of the list)", trunc(40, s))
	}
	return seq, nil
}

// header is one header of a dead letter, redacted when it looks like a
// credential.
type header struct {
	Name     string
	Values   []string
	Redacted bool
}

// sensitiveHeader reports headers whose values must not be shown: a
// runtime may have sent a job with credentials of its own.
func sensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"authorization", "cookie", "token", "secret", "password", "passwd", "api-key", "apikey", "credential", "signature"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// deadLetterPageData is the data of deadletter.html.
type deadLetterPageData struct {
	DL      *sfblocks.DeadLetter
	Headers []header
	// Payload is the payload as shown and edited (indented JSON); Edited
	// is the operator's text after a refused edit.
	Payload  string
	Editable bool
	Error    string
	JobURL   string
}

func (c *Console) deadLetterPage(w http.ResponseWriter, r *http.Request) {
	seq, err := parseSeq(r.PathValue("seq"))
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	c.showDeadLetter(w, r, seq, http.StatusOK, "", "")
}

// showDeadLetter renders one dead letter; edited and problem are the
// operator's refused edit and why.
func (c *Console) showDeadLetter(w http.ResponseWriter, r *http.Request, seq uint64, status int, edited, problem string) {
	ctx, cancel := c.readCtx(r)
	defer cancel()
	dl, err := c.client.GetDeadLetter(ctx, fmt.Sprintf("seq:%d", seq))
	switch {
	case errors.Is(err, client.ErrNoDeadLetter), errors.Is(err, client.ErrNoDLQ):
		c.fail(w, r, http.StatusNotFound, fmt.Sprintf("There is no dead letter %d: it was replayed successfully, purged, replaced by a newer dead letter of its job, or it expired. See the list.", seq))
		return
	case err != nil:
		c.fail(w, r, http.StatusBadGateway, fmt.Sprintf("Could not read dead letter %d: %v", seq, err))
		return
	}
	data := deadLetterPageData{DL: dl, JobURL: jobURL(dl), Error: problem, Editable: len(dl.Payload) > 0}
	data.Payload = prettyJSON(dl.Payload)
	if edited != "" {
		data.Payload = edited
	}
	for name, vals := range dl.Headers {
		h := header{Name: name, Values: vals}
		if sensitiveHeader(name) {
			h.Values, h.Redacted = nil, true
		}
		data.Headers = append(data.Headers, h)
	}
	slices.SortFunc(data.Headers, func(a, b header) int { return strings.Compare(a.Name, b.Name) })
	c.render(w, r, status, "deadletter", fmt.Sprintf("Dead letter %d", seq), "dlq", data)
}
