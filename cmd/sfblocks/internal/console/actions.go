package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sfblocks/sfblocks/worker/client"
)

// Operations on dead letters, in the form's "op".
const (
	opReplay = "replay"
	opPurge  = "purge"
)

// Scopes of an operation, in the form's "scope".
const (
	scopeOne      = "one"      // field seq
	scopeSelected = "selected" // fields seqs
	scopeFilter   = "filter"   // the filter's fields: everything it matches
)

// maxSelected bounds a selection: a page holds at most maxPerPage rows.
// Everything a filter matches has no bound.
const maxSelected = maxPerPage

// maxResultsShown is how many per-job results an action's page lists; the
// counts above them are always complete.
const maxResultsShown = 1000

// action is one replay or purge running in the background: it outlives the
// request that started it, and its page follows it.
type action struct {
	ID      string
	Op      string
	What    string
	Back    string
	Started time.Time
	cancel  context.CancelFunc

	mu        sync.Mutex
	ended     time.Time
	progress  client.ReplayProgress
	summary   *client.ReplaySummary
	purged    int
	err       string
	cancelled bool
}

// actionState is what the action's page and its progress JSON show.
type actionState struct {
	ID          string    `json:"id"`
	Op          string    `json:"op"`
	What        string    `json:"what"`
	Back        string    `json:"back"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended,omitzero"`
	Done        bool      `json:"done"`
	Cancelled   bool      `json:"cancelled"`
	Total       int       `json:"total"`
	Settled     int       `json:"settled"`
	Succeeded   int       `json:"succeeded"`
	FailedAgain int       `json:"failed_again"`
	Skipped     int       `json:"skipped"`
	Purged      int       `json:"purged"`
	Error       string    `json:"error,omitempty"`
	// Results are the replay's per-job outcomes once done, those that did
	// not succeed first, at most maxResultsShown; Hidden says how many more.
	Results []client.ReplayResult `json:"-"`
	Hidden  int                   `json:"-"`
}

func (a *action) state() actionState {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := actionState{ID: a.ID, Op: a.Op, What: a.What, Back: a.Back, Started: a.Started, Ended: a.ended, Done: !a.ended.IsZero(),
		Cancelled: a.cancelled, Total: a.progress.Total, Settled: a.progress.Done, Succeeded: a.progress.Succeeded,
		FailedAgain: a.progress.FailedAgain, Skipped: a.progress.Skipped, Purged: a.purged, Error: a.err}
	if s := a.summary; s != nil {
		st.Total, st.Succeeded, st.FailedAgain, st.Skipped = s.Selected, s.Succeeded, s.FailedAgain, s.Skipped
		st.Settled = s.Succeeded + s.FailedAgain + s.Skipped
		var failed, succeeded []client.ReplayResult
		for _, r := range s.Results {
			switch r.Outcome {
			case "": // not reached: the replay was cancelled or stopped
			case client.ReplaySucceeded:
				succeeded = append(succeeded, r)
			default:
				failed = append(failed, r)
			}
		}
		var shown []client.ReplayResult
		for _, r := range append(failed, succeeded...) {
			if len(shown) == maxResultsShown {
				st.Hidden++
				continue
			}
			shown = append(shown, r)
		}
		st.Results = shown
	}
	return st
}

// actions are the console's operations, the last maxActions of them.
type actions struct {
	mu    sync.Mutex
	m     map[string]*action
	order []string
}

const maxActions = 100

func newActions() *actions { return &actions{m: map[string]*action{}} }

func (as *actions) add(a *action) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.m[a.ID] = a
	as.order = append(as.order, a.ID)
	for len(as.order) > maxActions {
		old := as.m[as.order[0]]
		if old != nil && old.state().Done {
			delete(as.m, as.order[0])
		}
		as.order = as.order[1:]
	}
}

func (as *actions) get(id string) *action {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.m[id]
}

// confirmPageData is the data of confirm.html.
type confirmPageData struct {
	Op       string
	What     string
	Count    int
	Fields   url.Values // the form to post again, with confirm=yes
	Back     string
	Info     *client.DLQInfo
	Describe string
}

// deadLetterAction starts a replay or a purge of one dead letter, a
// selection, or everything the filter matches. A purge, and anything the
// filter matches, is confirmed first, on a page that says how many dead
// letters it concerns.
func (c *Console) deadLetterAction(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, http.StatusBadRequest, "The form could not be read ("+err.Error()+"); an edited payload may be at most 1 MiB.")
		return
	}
	form := r.PostForm
	op, scope := form.Get("op"), form.Get("scope")
	if op != opReplay && op != opPurge {
		c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("Unknown operation %q: the console replays or purges dead letters.", trunc(40, op)))
		return
	}
	back := localPath(form.Get("back"))
	var (
		flt     client.DLQFilter
		what    string
		payload []byte
		count   = -1
	)
	switch scope {
	case scopeOne:
		seq, err := parseSeq(form.Get("seq"))
		if err != nil {
			c.fail(w, r, http.StatusBadRequest, err.Error())
			return
		}
		flt.Refs = []string{fmt.Sprintf("seq:%d", seq)}
		what, count = fmt.Sprintf("dead letter %d", seq), 1
		if op == opReplay && form.Has("payload") {
			edited := form.Get("payload")
			var obj map[string]any
			if err := json.Unmarshal([]byte(edited), &obj); err != nil || obj == nil {
				why := "it is not a JSON object"
				if err != nil {
					why = "it is not valid JSON: " + err.Error()
				}
				c.showDeadLetter(w, r, seq, http.StatusBadRequest, edited, "The edited payload was not replayed: "+why+". Correct it and replay again.")
				return
			}
			payload = []byte(edited)
			what += " with an edited payload"
		}
	case scopeSelected:
		seqs := form["seqs"]
		if len(seqs) == 0 {
			c.fail(w, r, http.StatusBadRequest, "No dead letter was selected: tick the ones to "+op+" in the list, or use the button for everything the filter matches.")
			return
		}
		if len(seqs) > maxSelected {
			c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("%d dead letters selected; a selection holds at most %d (one page): use the button for everything the filter matches.", len(seqs), maxSelected))
			return
		}
		for _, s := range seqs {
			seq, err := parseSeq(s)
			if err != nil {
				c.fail(w, r, http.StatusBadRequest, err.Error())
				return
			}
			flt.Refs = append(flt.Refs, fmt.Sprintf("seq:%d", seq))
		}
		what, count = fmt.Sprintf("%d selected dead letters", len(seqs)), len(seqs)
	case scopeFilter:
		ff, f, err := parseFilter(form, c.now())
		if err != nil {
			c.fail(w, r, http.StatusBadRequest, "The filter is wrong: "+err.Error())
			return
		}
		flt, what = f, ff.describe()
	default:
		c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("Unknown scope %q: one, selected or filter.", trunc(40, scope)))
		return
	}

	if (op == opPurge || scope == scopeFilter) && form.Get("confirm") != "yes" {
		ctx, cancel := c.readCtx(r)
		defer cancel()
		data := confirmPageData{Op: op, What: what, Back: back, Count: count}
		if info, err := c.client.DLQInfo(ctx); err == nil {
			data.Info = info
		}
		if scope == scopeFilter {
			dls, err := c.client.ListDeadLetters(ctx, flt)
			if err != nil {
				c.fail(w, r, http.StatusBadGateway, "Could not count the dead letters the filter matches: "+err.Error())
				return
			}
			data.Count = len(dls)
		}
		fields := url.Values{}
		for k, v := range form {
			if k != "csrf" && k != "confirm" {
				fields[k] = v
			}
		}
		fields.Set("confirm", "yes")
		data.Fields = fields
		c.render(w, r, http.StatusOK, "confirm", "Confirm", "dlq", data)
		return
	}

	a := c.start(op, what, back, func(ctx context.Context, a *action) {
		if op == opPurge {
			n, err := c.client.PurgeDeadLetters(ctx, flt)
			a.mu.Lock()
			a.purged = n
			a.mu.Unlock()
			a.finish(nil, err, c.now())
			return
		}
		sum, err := c.client.ReplayDeadLetters(ctx, flt, client.ReplayOptions{Payload: payload, Timeout: c.cfg.ReplayTimeout,
			Progress: func(p client.ReplayProgress) {
				a.mu.Lock()
				a.progress = p
				a.mu.Unlock()
			}})
		a.finish(sum, err, c.now())
	})
	http.Redirect(w, r, "/actions/"+a.ID, http.StatusSeeOther)
}

// start runs an action in the background, under the console's context.
func (c *Console) start(op, what, back string, run func(context.Context, *action)) *action {
	ctx, cancel := context.WithCancel(c.base)
	a := &action{ID: randomToken()[:16], Op: op, What: what, Back: back, Started: c.now(), cancel: cancel}
	c.actions.add(a)
	c.cfg.Logger.Info().Str("action", a.ID).Str("op", op).Str("what", what).Msg("console: action started")
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer cancel()
		run(ctx, a)
		st := a.state()
		c.cfg.Logger.Info().Str("action", a.ID).Str("op", op).Str("what", what).Int("selected", st.Total).Int("succeeded", st.Succeeded).
			Int("failed_again", st.FailedAgain).Int("skipped", st.Skipped).Int("purged", st.Purged).Str("error", st.Error).Msg("console: action done")
	}()
	return a
}

func (a *action) finish(sum *client.ReplaySummary, err error, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.summary = sum
	if err != nil {
		if errors.Is(err, context.Canceled) {
			a.cancelled = true
			a.err = "cancelled: replays already published still run, and dead letters not replayed are kept"
		} else {
			a.err = err.Error()
		}
	}
	a.ended = now
}

func (c *Console) actionOf(w http.ResponseWriter, r *http.Request) *action {
	a := c.actions.get(r.PathValue("id"))
	if a == nil {
		c.fail(w, r, http.StatusNotFound, "There is no such action: the console keeps its last 100 actions until it restarts. The dead letters themselves are in the list.")
	}
	return a
}

func (c *Console) actionPage(w http.ResponseWriter, r *http.Request) {
	if a := c.actionOf(w, r); a != nil {
		c.render(w, r, http.StatusOK, "action", "Action", "dlq", a.state())
	}
}

func (c *Console) actionProgress(w http.ResponseWriter, r *http.Request) {
	a := c.actions.get(r.PathValue("id"))
	if a == nil {
		http.Error(w, `{"error":"no such action"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a.state())
}

func (c *Console) cancelAction(w http.ResponseWriter, r *http.Request) {
	if a := c.actionOf(w, r); a != nil {
		a.cancel()
		http.Redirect(w, r, "/actions/"+a.ID, http.StatusSeeOther)
	}
}
