package sfsim

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
)

// saveResult is the body of a create and an element of a collections answer.
type saveResult struct {
	ID      string        `json:"id,omitempty"`
	Success bool          `json:"success"`
	Errors  []recordError `json:"errors"`
}

// upsertResult is the body of an upsert from API 46.0 on.
type upsertResult struct {
	ID      string        `json:"id"`
	Success bool          `json:"success"`
	Errors  []recordError `json:"errors"`
	Created bool          `json:"created"`
}

// recordError is one error of a SaveResult: note "statusCode", not "errorCode".
type recordError struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

func (s *Server) routeSObjects(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	p := c.parts
	switch len(p) {
	case 1:
		if allow(w, r, http.MethodGet) {
			s.countCall(KindDescribeGlobal)
			s.describeGlobal(w, c)
		}
	case 2:
		if allow(w, r, http.MethodGet, http.MethodPost) {
			if r.Method == http.MethodPost {
				s.create(w, r, c, p[1])
				return
			}
			s.countCall(KindSObjectInfo)
			s.sobjectInfo(w, c, p[1])
		}
	case 3:
		if p[2] == "describe" {
			if allow(w, r, http.MethodGet) {
				s.countCall(KindDescribe)
				s.describe(w, c, p[1])
			}
			return
		}
		if allow(w, r, http.MethodGet, http.MethodPatch, http.MethodDelete) {
			switch r.Method {
			case http.MethodPatch:
				s.update(w, r, c, p[1], p[2])
			case http.MethodDelete:
				s.delete(w, c, p[1], p[2])
			default:
				s.get(w, r, c, p[1], p[2])
			}
		}
	case 4:
		if allow(w, r, http.MethodGet, http.MethodPatch, http.MethodDelete) {
			if r.Method == http.MethodPatch {
				s.upsert(w, r, c, p[1], p[2], p[3])
				return
			}
			s.countCall(KindOther)
			// Reading or deleting by external ID is not simulated.
			writeErrors(w, http.StatusNotFound, apiError{Code: "NOT_FOUND", Message: msgNotFound})
		}
	default:
		s.countCall(KindOther)
		writeErrors(w, http.StatusNotFound, apiError{Code: "NOT_FOUND", Message: msgNotFound})
	}
}

// objectSummary renders the describeGlobal entry of an object.
func objectSummary(o simdb.ObjectSchema, base string) map[string]any {
	u := base + "/sobjects/" + o.Name
	return map[string]any{
		"activateable": false, "associateEntityType": nil, "associateParentEntity": nil,
		"createable": o.Createable, "custom": false, "customSetting": false,
		"deepCloneable": false, "deletable": true, "deprecatedAndHidden": false,
		"feedEnabled": true, "hasSubtypes": false, "isInterface": false, "isSubtype": false,
		"keyPrefix": o.KeyPrefix, "label": o.Label, "labelPlural": o.LabelPlural,
		"layoutable": true, "mergeable": false, "mruEnabled": true, "name": o.Name,
		"queryable": o.Queryable, "replicateable": true, "retrieveable": true,
		"searchable": o.Searchable, "triggerable": true, "undeletable": true, "updateable": true,
		"urls": map[string]string{
			"compactLayouts":  u + "/describe/compactLayouts",
			"rowTemplate":     u + "/{ID}",
			"approvalLayouts": u + "/describe/approvalLayouts",
			"describe":        u + "/describe",
			"quickActions":    u + "/quickActions",
			"layouts":         u + "/describe/layouts",
			"sobject":         u,
		},
	}
}

func (s *Server) describeGlobal(w http.ResponseWriter, c *reqCtx) {
	objs := s.db.Objects()
	list := make([]map[string]any, 0, len(objs))
	for _, o := range objs {
		list = append(list, objectSummary(o, c.base()))
	}
	writeJSON(w, http.StatusOK, map[string]any{"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": list})
}

func (s *Server) sobjectInfo(w http.ResponseWriter, c *reqCtx, object string) {
	o, err := s.db.Describe(object)
	if err != nil {
		writeDBError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"objectDescribe": objectSummary(o, c.base()), "recentItems": []any{}})
}

func (s *Server) describe(w http.ResponseWriter, c *reqCtx, object string) {
	o, err := s.db.Describe(object)
	if err != nil {
		writeDBError(w, err)
		return
	}
	out := objectSummary(o, c.base())
	fields := make([]map[string]any, 0, len(o.Fields))
	for _, f := range o.Fields {
		ref := f.ReferenceTo
		if ref == nil {
			ref = []string{}
		}
		var rel any
		if f.RelationshipName != "" {
			rel = f.RelationshipName
		}
		// A text area, long or not, is "plaintextarea" (a rich text area
		// would be "richtextarea"); other types carry null.
		var extra any
		if f.Type == "textarea" {
			extra = "plaintextarea"
		}
		fields = append(fields, map[string]any{
			"name": f.Name, "label": f.Label, "type": f.Type, "length": f.Length,
			"nillable": f.Nillable, "createable": f.Createable, "updateable": f.Updateable,
			"unique": f.Unique, "externalId": f.ExternalID, "idLookup": f.IDLookup,
			"defaultedOnCreate": f.DefaultedOnCreate, "referenceTo": ref, "relationshipName": rel,
			"custom": strings.HasSuffix(f.Name, "__c"), "filterable": f.Filterable, "sortable": f.Sortable,
			"groupable": f.Groupable, "calculated": false, "autoNumber": false, "caseSensitive": f.CaseSensitive,
			"soapType": soapType(f.Type), "nameField": f.Name == "Name",
			"precision": 0, "scale": 0, "digits": 0, "byteLength": f.Length * 3,
			"picklistValues": []any{}, "defaultValue": nil, "inlineHelpText": nil,
			"extraTypeInfo": extra, "htmlFormatted": false, "encrypted": false,
		})
	}
	out["fields"] = fields
	out["childRelationships"] = []any{}
	out["recordTypeInfos"] = []any{}
	out["supportedScopes"] = []map[string]string{{"label": "All " + o.LabelPlural, "name": "everything"}}
	writeJSON(w, http.StatusOK, out)
}

func soapType(t string) string {
	switch t {
	case "id", "reference":
		return "tns:ID"
	case "boolean":
		return "xsd:boolean"
	case "double", "currency", "percent":
		return "xsd:double"
	case "int":
		return "xsd:int"
	case "date":
		return "xsd:date"
	case "datetime":
		return "xsd:dateTime"
	}
	return "xsd:string"
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, c *reqCtx, object, id string) {
	s.countCall(KindGet)
	rec, err := s.db.Get(object, id, splitList(r.URL.Query().Get("fields")), c.version)
	if err != nil {
		writeDBError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// readFields decodes a record body into a field map, rejecting non-objects
// and dropping the "attributes" map clients may send back.
func readFields(r *http.Request) (map[string]any, *apiError) {
	var fields map[string]any
	if e := decodeBody(r, &fields); e != nil {
		return nil, e
	}
	if fields == nil {
		return nil, &apiError{Code: "JSON_PARSER_ERROR", Message: "No content to map due to end-of-input at [line:1, column:0]"}
	}
	delete(fields, "attributes")
	jsonNumberToAny(fields)
	return fields, nil
}

// lockFault answers UNABLE_TO_LOCK_ROW when the injector holds a lock.
func (s *Server) lockFault(object, id string) (apiError, bool) {
	if !s.faults.takeLock() {
		return apiError{}, false
	}
	s.stats.add(func(st *Stats) { st.FaultsInjected["lockRow"]++ })
	if id == "" {
		id = s.lockedID(object)
	}
	return apiError{
		Code:    "UNABLE_TO_LOCK_ROW",
		Message: "unable to obtain exclusive access to this record or 1 records: " + id,
		Fields:  []string{},
	}, true
}

// lockedID names a plausible record holding the lock: the object's key
// prefix with a fixed body.
func (s *Server) lockedID(object string) string {
	prefix := "001"
	if o, err := s.db.Describe(object); err == nil && o.KeyPrefix != "" {
		prefix = o.KeyPrefix
	}
	return sfID(prefix, "00000777")
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, c *reqCtx, object string) {
	s.countCall(KindCreate)
	fields, e := readFields(r)
	if e != nil {
		writeErrors(w, http.StatusBadRequest, *e)
		return
	}
	if le, ok := s.lockFault(object, ""); ok {
		writeErrors(w, http.StatusBadRequest, le)
		return
	}
	id, err := s.db.Create(object, fields)
	if err != nil {
		writeDBError(w, err)
		return
	}
	s.stats.add(func(st *Stats) { st.RecordsCreated++ })
	if s.loseAnswer(w, r, 1) {
		return
	}
	writeJSON(w, http.StatusCreated, saveResult{ID: id, Success: true, Errors: []recordError{}})
}

// update is PATCH sobjects/{Object}/{id}: an upsert on Id that must match.
func (s *Server) update(w http.ResponseWriter, r *http.Request, c *reqCtx, object, id string) {
	s.countCall(KindUpdate)
	fields, e := readFields(r)
	if e != nil {
		writeErrors(w, http.StatusBadRequest, *e)
		return
	}
	if _, err := s.db.Get(object, id, []string{"Id"}, c.version); err != nil {
		writeDBError(w, err)
		return
	}
	if le, ok := s.lockFault(object, id); ok {
		writeErrors(w, http.StatusBadRequest, le)
		return
	}
	if _, _, err := s.db.Upsert(object, "Id", id, fields); err != nil {
		writeDBError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) delete(w http.ResponseWriter, c *reqCtx, object, id string) {
	s.countCall(KindDelete)
	if err := s.db.Delete(object, id); err != nil {
		writeDBError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// upsert is PATCH sobjects/{Object}/{Field}/{value}. From API 46.0 both
// outcomes carry a body with "created"; before, an update is 204.
func (s *Server) upsert(w http.ResponseWriter, r *http.Request, c *reqCtx, object, field, value string) {
	s.countCall(KindUpsert)
	fields, e := readFields(r)
	if e != nil {
		writeErrors(w, http.StatusBadRequest, *e)
		return
	}
	if le, ok := s.lockFault(object, ""); ok {
		writeErrors(w, http.StatusBadRequest, le)
		return
	}
	if re := s.upsertRaceError(object, field, value); re != nil {
		writeDBError(w, re)
		return
	}
	id, created, err := s.db.Upsert(object, field, value, fields)
	if err != nil {
		writeDBError(w, err)
		return
	}
	status, n := http.StatusOK, 0
	if created {
		status, n = http.StatusCreated, 1
		s.stats.add(func(st *Stats) { st.RecordsCreated++ })
	}
	if s.loseAnswer(w, r, n) {
		return
	}
	if versionAtLeast(c.version, 46) {
		writeJSON(w, status, upsertResult{ID: id, Success: true, Errors: []recordError{}, Created: created})
		return
	}
	if created {
		writeJSON(w, status, saveResult{ID: id, Success: true, Errors: []recordError{}})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func versionAtLeast(v string, major int) bool {
	n, err := strconv.Atoi(strings.TrimSuffix(v, ".0"))
	return err == nil && n >= major
}
