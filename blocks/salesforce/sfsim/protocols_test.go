package sfsim

import (
	"net/http"
	"testing"
)

// TestServesHTTP1AndCleartextHTTP2: a Salesforce client that speaks
// HTTP/1.1 (as every one does) and sfblocks's, which speaks cleartext HTTP/2
// to http:// hosts, are both answered on the same listener.
func TestServesHTTP1AndCleartextHTTP2(t *testing.T) {
	s := startSim(t, Options{H2C: true})
	tests := []struct {
		name      string
		protocols func(*http.Protocols)
		wantMajor int
		wantAlt   string // Alt-Svc: HTTP/1.1 answers advertise h2c
	}{
		{name: "HTTP/1.1", protocols: func(p *http.Protocols) { p.SetHTTP1(true) }, wantMajor: 1,
			wantAlt: `h2c=":` + s.port + `"`},
		{name: "h2c with prior knowledge", protocols: func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }, wantMajor: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p http.Protocols
			tt.protocols(&p)
			tr := &http.Transport{Protocols: &p}
			defer tr.CloseIdleConnections()
			res, err := (&http.Client{Transport: tr}).Get(s.MyDomainURL() + "/services/data/")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK || res.ProtoMajor != tt.wantMajor {
				t.Fatalf("answered %s over %s, want 200 over HTTP/%d", res.Status, res.Proto, tt.wantMajor)
			}
			if got := res.Header.Get("Alt-Svc"); got != tt.wantAlt {
				t.Fatalf("Alt-Svc %q, want %q", got, tt.wantAlt)
			}
		})
	}
}

// By default the simulator speaks HTTP/1.1 only and advertises nothing.
func TestServesHTTP1OnlyByDefault(t *testing.T) {
	s := startSim(t, Options{})
	res, err := http.Get(s.MyDomainURL() + "/services/data/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 1 || res.Header.Get("Alt-Svc") != "" {
		t.Errorf("answered over %s with Alt-Svc %q, want HTTP/1.1 and none", res.Proto, res.Header.Get("Alt-Svc"))
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	defer tr.CloseIdleConnections()
	if res, err := (&http.Client{Transport: tr}).Get(s.MyDomainURL() + "/services/data/"); err == nil {
		res.Body.Close()
		t.Errorf("an h2c call was answered (%s), want it refused", res.Proto)
	}
}
