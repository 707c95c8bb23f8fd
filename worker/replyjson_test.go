package worker

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/sfblocks/sfblocks"
)

// TestReplyEncodingMatchesJSON: the hand-written encoding of a reply is
// json.Marshal's, byte for byte, and what it cannot write it leaves to
// json.Marshal.
func TestReplyEncodingMatchesJSON(t *testing.T) {
	n, zero, yes, no := 2, 0, true, false
	rec := map[string]any{"Id": "003Hs000000001dIAA", "Name": "Ada Byron", "Account": map[string]any{"Name": "Acme & Sons <b>"},
		"Amount": json.Number("-12.50e+3"), "Open": true, "Closed": false, "Owner": nil, "Tags": []any{"a", json.Number("1"), nil, []any{}},
		"Empty": map[string]any{}, "Zero": json.Number(""), "Text": "line\nbreak\ttab \"quoted\" back\\slash \u0001 \b\f",
		"Unicode": "Zoë, 東京, \u2028\u2029 and \xff invalid", "": "empty key"}
	tests := []struct {
		name  string
		given *sfblocks.Reply
		// wantOwn: the hand-written encoding writes it (else json.Marshal).
		wantOwn bool
	}{
		{"minimal", &sfblocks.Reply{}, true},
		{"search", &sfblocks.Reply{ID: "job-42", Account: "prod", Status: sfblocks.StatusOK, Count: &n,
			Records: []map[string]any{rec, {"Id": "2"}}, First: rec, DurationMS: 12, Attempt: 1}, true},
		{"first is another map", &sfblocks.Reply{ID: "j", Status: sfblocks.StatusOK, Count: &n,
			Records: []map[string]any{{"Id": "1"}}, First: map[string]any{"Id": "other"}}, true},
		{"first alone", &sfblocks.Reply{ID: "j", First: map[string]any{"Id": "1"}}, true},
		{"nil record", &sfblocks.Reply{ID: "j", Records: []map[string]any{nil, {}}, First: map[string]any{}}, true},
		{"empty records", &sfblocks.Reply{ID: "j", Status: sfblocks.StatusNoData, Count: &zero, Records: []map[string]any{}, Truncated: true}, true},
		{"insert", &sfblocks.Reply{ID: "call-42", Account: "a", Status: sfblocks.StatusOK, ObjectID: "00T000000000001AAA", Created: &yes, DurationMS: 3, Attempt: 2}, true},
		{"updated", &sfblocks.Reply{ID: "call-42", Status: sfblocks.StatusOK, ObjectID: "x", Created: &no}, true},
		{"failed", &sfblocks.Reply{ID: "j-1", Account: "prod", Status: sfblocks.StatusFailed, ResultCode: 400,
			ResultBody: `[{"message":"No such column 'Nme' on entity 'Contact'","errorCode":"INVALID_FIELD"}]`,
			Error: &sfblocks.ErrorInfo{Code: sfblocks.CodeSalesforceError, Message: "Salesforce refused the query <INVALID_FIELD> & more",
				SalesforceCode: "INVALID_FIELD"}, DurationMS: -1, Attempt: math.MaxInt32}, true},
		{"failed without salesforce code", &sfblocks.Reply{ID: "j", Status: sfblocks.StatusFailed,
			Error: &sfblocks.ErrorInfo{Code: sfblocks.CodeTimeout, Message: "m", Retryable: true}}, true},
		{"a float is json.Marshal's", &sfblocks.Reply{ID: "j", Records: []map[string]any{{"x": 1.5}}}, false},
		{"an int is json.Marshal's", &sfblocks.Reply{ID: "j", First: map[string]any{"x": 1}}, false},
		{"a nested typed map is json.Marshal's", &sfblocks.Reply{ID: "j", First: map[string]any{"x": map[string]string{"a": "b"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.given)
			if err != nil {
				t.Fatal(err)
			}
			own, ok := appendReply(nil, tt.given)
			if ok != tt.wantOwn {
				t.Errorf("written by hand %v, want %v", ok, tt.wantOwn)
			}
			if ok && !bytes.Equal(own, want) {
				t.Errorf("hand-written:\n got %s\nwant %s", own, want)
			}
			got, err := marshalReply(tt.given)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("marshalReply: %s, %v\nwant %s", got, err, want)
			}
		})
	}
	// An invalid json.Number fails as it does in json.Marshal.
	bad := &sfblocks.Reply{ID: "j", First: map[string]any{"n": json.Number("1x")}}
	if _, err := marshalReply(bad); err == nil {
		t.Error("an invalid json.Number encoded")
	}
}

// FuzzReplyEncoding: for any record Salesforce could answer (any JSON
// object, decoded as the client decodes it), and any id, the hand-written
// reply is json.Marshal's.
func FuzzReplyEncoding(f *testing.F) {
	f.Add(`{"Id":"003","Name":"Ada Byron","Account":{"Name":"Acme"}}`, "job-1", "error <message> & more")
	f.Add(`{"a":[1,2.5e-3,-0,true,null,{"b":"\u2028\u00e9\ud800"}],"":"\u0000"}`, "", "")
	f.Add(`{"z":"\"\\\/\b\f\n\r\t","y":1E+400,"x":[]}`, "\xff\x00", "\u2029")
	f.Fuzz(func(t *testing.T, record, id, message string) {
		dec := json.NewDecoder(bytes.NewReader([]byte(record)))
		dec.UseNumber()
		var rec map[string]any
		if dec.Decode(&rec) != nil {
			return
		}
		n := 1
		r := &sfblocks.Reply{ID: id, Account: message, Status: sfblocks.StatusOK, Count: &n, Records: []map[string]any{rec},
			First: rec, ResultBody: record, Error: &sfblocks.ErrorInfo{Code: sfblocks.CodeInternal, Message: message}}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendReply(nil, r)
		if !ok {
			t.Fatalf("a decoded record was left to json.Marshal: %s", record)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("record %s:\n got %s\nwant %s", record, got, want)
		}
	})
}
