package sfsim

import (
	"net/http"
	"strings"
)

// serveAdmin answers the test controls under /_sim/ (outside /services, so
// no Salesforce client reaches them by accident). JSON in and out, no auth:
//
//	GET  /_sim/faults           current FaultConfig, e.g. {"latency":{},"commitThenDrop":{"rate":0.5}}
//	PUT  /_sim/faults           replace it (400 with {"error": ...} naming the field if invalid)
//	DELETE /_sim/faults         remove every fault
//	GET  /_sim/stats            Stats
//	GET  /_sim/usage            {"used":N,"limit":M}
//	PUT  /_sim/usage            {"used":N} sets the daily requests used
//	POST /_sim/expire-sessions  expire every access token
//	POST /_sim/reset            clear faults, stats and API usage
//	POST /_sim/token            mint a token without OAuth ({"scope":"api"}), test only
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/_sim/"), "/") {
	case "faults":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, s.faults.Config())
		case http.MethodPut, http.MethodPost:
			var cfg FaultConfig
			if e := decodeBody(r, &cfg); e != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": e.Message})
				return
			}
			if err := s.faults.Set(cfg); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, s.faults.Config())
		case http.MethodDelete:
			s.faults.Reset()
			writeJSON(w, http.StatusOK, s.faults.Config())
		default:
			methodNotAllowed(w, r, http.MethodGet, http.MethodPut, http.MethodDelete)
		}
	case "stats":
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, s.Stats())
		}
	case "usage":
		switch r.Method {
		case http.MethodGet:
		case http.MethodPut, http.MethodPost:
			var body struct {
				Used int `json:"used"`
			}
			if e := decodeBody(r, &body); e != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": e.Message})
				return
			}
			s.SetAPIUsage(body.Used)
		default:
			methodNotAllowed(w, r, http.MethodGet, http.MethodPut)
			return
		}
		used, limit := s.APIUsage()
		writeJSON(w, http.StatusOK, map[string]int{"used": used, "limit": limit})
	case "expire-sessions":
		if allow(w, r, http.MethodPost) {
			s.ExpireAllSessions()
			writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		}
	case "reset":
		if allow(w, r, http.MethodPost) {
			s.Reset()
			writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		}
	case "token":
		if allow(w, r, http.MethodPost) {
			var body struct {
				Scope string `json:"scope"`
			}
			if r.ContentLength != 0 {
				if e := decodeBody(r, &body); e != nil {
					writeJSON(w, http.StatusBadRequest, map[string]string{"error": e.Message})
					return
				}
			}
			t := s.IssueToken(body.Scope)
			writeJSON(w, http.StatusOK, map[string]string{
				"access_token": t.AccessToken, "refresh_token": t.RefreshToken,
				"instance_url": s.instanceURLFor(r),
			})
		}
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown simulator control " + r.URL.Path})
	}
}
