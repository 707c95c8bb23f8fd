package client

import (
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
)

func TestDLQFilterMatch(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	dl := &sfblocks.DeadLetter{JobID: "call-1", Block: sfblocks.Insert, Account: "prod", Stored: at,
		Error: sfblocks.ErrorInfo{Code: sfblocks.CodeSalesforceError, SalesforceCode: "REQUIRED_FIELD_MISSING"}}
	tests := []struct {
		name  string
		given DLQFilter
		want  bool
	}{
		{"empty", DLQFilter{}, true},
		{"block", DLQFilter{Block: sfblocks.Insert}, true},
		{"other block", DLQFilter{Block: sfblocks.Search}, false},
		{"account", DLQFilter{Account: "prod"}, true},
		{"other account", DLQFilter{Account: "backoffice"}, false},
		{"code", DLQFilter{Code: sfblocks.CodeSalesforceError}, true},
		{"other code", DLQFilter{Code: sfblocks.CodeAuthFailed}, false},
		{"salesforce code", DLQFilter{SalesforceCode: "REQUIRED_FIELD_MISSING"}, true},
		{"other salesforce code", DLQFilter{SalesforceCode: "UNABLE_TO_LOCK_ROW"}, false},
		{"code and salesforce code", DLQFilter{Code: sfblocks.CodeSalesforceError, SalesforceCode: "REQUIRED_FIELD_MISSING"}, true},
		{"since, inclusive", DLQFilter{Since: at}, true},
		{"since after", DLQFilter{Since: at.Add(time.Second)}, false},
		{"until, exclusive", DLQFilter{Until: at}, false},
		{"until after", DLQFilter{Until: at.Add(time.Second)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.given.match(dl); got != tt.want {
				t.Errorf("%+v.match = %v, want %v", tt.given, got, tt.want)
			}
			if tt.given.Empty() != (tt.name == "empty") {
				t.Errorf("%+v.Empty() = %v", tt.given, tt.given.Empty())
			}
		})
	}
}
