package sfblocks_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sfblocks/sfblocks"
)

func TestOrderByJSON(t *testing.T) {
	tests := []struct {
		name    string
		given   string
		want    sfblocks.OrderBy
		wantErr string
	}{
		{"soql string", `"LastName DESC NULLS LAST, FirstName"`,
			sfblocks.OrderBy{{Field: "LastName", Direction: "desc", Nulls: "last"}, {Field: "FirstName"}}, ""},
		{"array of objects", `[{"field":"Name","direction":"asc"}]`, sfblocks.OrderBy{{Field: "Name", Direction: "asc"}}, ""},
		{"array of strings", `["Name desc"]`, sfblocks.OrderBy{{Field: "Name", Direction: "desc"}}, ""},
		{"null", `null`, nil, ""},
		{"unknown key", `[{"field":"Name","dir":"asc"}]`, nil, `unknown key "dir" in order_by[0]`},
		{"wrong type", `[{"field":1}]`, nil, "order_by[0] must be an object"},
		{"empty item", `"Name,"`, nil, "order_by has an empty item"},
		{"unreadable", `"Name sideways"`, nil, `cannot read "Name sideways"`},
		{"number", `42`, nil, "order_by must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got sfblocks.OrderBy
			err := json.Unmarshal([]byte(tt.given), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, sfblocks.ErrInvalidRequest) {
					t.Fatalf("err = %v, want INVALID_REQUEST containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("item %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
