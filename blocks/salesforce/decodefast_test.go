package salesforce

import (
	"reflect"
	"testing"
)

// jsonQueryPage is what decodeJSON decodes.
func jsonQueryPage(data []byte) (queryPage, error) {
	var page queryPage
	err := decodeJSON(data, &page)
	return page, err
}

const simPage = `{"totalSize":2,"done":true,"records":[{"attributes":{"type":"Contact","url":"/services/data/v62.0/sobjects/Contact/003000000000001AAA"},` +
	`"Id":"003000000000001AAA","Name":"Ada Byron","Account":{"attributes":{"type":"Account","url":"/services/data/v62.0/sobjects/Account/001000000000001AAA"},"Name":"Analytical Engines"},` +
	`"Score__c":12.5,"Active__c":true,"Phone":null},{"attributes":{"type":"Contact"},"Id":"003000000000002AAA","Name":"Émilie du Châtelet","Tags":["a",1,false,[]],"Empty":{}}]}`

func TestDecodeQueryPageFast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		given  string
		wantOK bool // the fast path decodes it (else encoding/json does)
	}{
		{"records", simPage, true},
		{"next page", `{"totalSize":3000,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01gD-2000","records":[]}`, true},
		{"count", ` {"totalSize":42,"done":true,"records":[]} `, true},
		{"unknown member skipped", `{"totalSize":0,"done":true,"records":[],"queryLocator":null,"x":{"y":[1,2]}}`, true},
		{"trailing data ignored", `{"totalSize":0,"done":true,"records":[]} garbage`, true},
		{"nested duplicate key", `{"records":[{"A":1,"A":2}]}`, true},
		{"escape", `{"totalSize":1,"done":true,"records":[{"Name":"O\"Brien"}]}`, false},
		{"other spelling", `{"TotalSize":1}`, false},
		{"duplicate member", `{"done":true,"done":false}`, false},
		{"null member", `{"records":null}`, false},
		{"float total", `{"totalSize":1.0}`, false},
		{"invalid UTF-8", "{\"records\":[{\"Name\":\"\xff\"}]}", false},
		{"not an object", `[]`, false},
		{"records not an array", `{"records":{}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got queryPage
			ok := decodeQueryPageFast([]byte(tt.given), &got)
			if ok != tt.wantOK {
				t.Fatalf("fast path ok %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			want, err := jsonQueryPage([]byte(tt.given))
			if err != nil {
				t.Fatalf("encoding/json refuses what the fast path took: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("fast path decoded\n%#v\nencoding/json\n%#v", got, want)
			}
		})
	}
}

// FuzzDecodeQueryPageFast: whatever the fast path decodes, decodeJSON
// decodes too, to the very same page.
func FuzzDecodeQueryPageFast(f *testing.F) {
	for _, seed := range []string{simPage, `{}`, `{"totalSize":-1,"done":false,"nextRecordsUrl":"x","records":[null,1e5,"s",{"a":[{}]}]}`,
		`{"records":[1,2],"records":[3]}`, `{"DONE":true}`, `{"totalSize":1}x`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got queryPage
		if !decodeQueryPageFast(data, &got) {
			return
		}
		want, err := jsonQueryPage(data)
		if err != nil {
			t.Fatalf("fast path decoded %q, which encoding/json refuses: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast path decoded\n%#v\nencoding/json\n%#v", data, got, want)
		}
	})
}

// BenchmarkDecodeQueryPage decodes a page of two records as a query does,
// and as encoding/json alone did before.
func BenchmarkDecodeQueryPage(b *testing.B) {
	data := []byte(simPage)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var page queryPage
			if !decodeQueryPageFast(data, &page) {
				b.Fatal("fast path refused the page")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jsonQueryPage(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
