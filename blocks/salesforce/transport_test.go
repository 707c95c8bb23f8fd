package salesforce

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoProto answers with the request's protocol and body.
func echoProto(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s", r.Proto, body)
}

// startServer serves h on a listener of its own, in HTTP/1.1 and, with
// h2c, in cleartext HTTP/2 too, which its HTTP/1.1 answers then advertise.
func startServer(t *testing.T, h http.Handler, h2c bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(h2c)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	srv := &http.Server{Protocols: &p, ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h2c {
				w.Header().Set("Alt-Svc", `h2c=":`+port+`"; ma=86400`)
			}
			h.ServeHTTP(w, r)
		})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func post(t *testing.T, rt http.RoundTripper, u, body string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestSharedClientProtocols(t *testing.T) {
	tests := []struct {
		name string
		h2c  bool
		want []string // each call's protocol
	}{
		{name: "advertised h2c: HTTP/1.1 until the first answer, h2c after", h2c: true,
			want: []string{"HTTP/1.1", "HTTP/2.0", "HTTP/2.0"}},
		{name: "HTTP/1.1-only server: never an HTTP/2 preface", want: []string{"HTTP/1.1", "HTTP/1.1", "HTTP/1.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var methods []string
			u := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				methods = append(methods, r.Method)
				mu.Unlock()
				echoProto(w, r)
			}), tt.h2c)
			rt := newCleartextH2(newPoolTransport())
			defer rt.CloseIdleConnections()
			for i, proto := range tt.want {
				body := fmt.Sprintf("call %d", i)
				if got, want := post(t, rt, u, body), proto+" "+body; got != want {
					t.Fatalf("call %d answered %q, want %q", i, got, want)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(methods) != len(tt.want) {
				t.Fatalf("the server's handler saw %v, want %d POSTs", methods, len(tt.want))
			}
		})
	}
}

func TestOffersH2C(t *testing.T) {
	tests := []struct {
		name  string
		given []string
		want  bool
	}{
		{name: "same port", given: []string{`h2c=":8080"`}, want: true},
		{name: "same port, with parameters, among others", given: []string{`h3=":443"; ma=60, h2c=":8080"; ma=86400`}, want: true},
		{name: "same host and port", given: []string{`h2c="localhost:8080"`}, want: true},
		{name: "another port", given: []string{`h2c=":9090"`}},
		{name: "another host", given: []string{`h2c="elsewhere:8080"`}},
		{name: "h2 is TLS, not cleartext", given: []string{`h2=":8080"`}},
		{name: "clear", given: []string{`clear`}},
		{name: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := offersH2C(tt.given, "localhost:8080"); got != tt.want {
				t.Fatalf("offersH2C(%q) = %v, want %v", tt.given, got, tt.want)
			}
		})
	}
}

// TestSharedClientCarriesMoreCallsThanStreams holds more calls in flight at
// once than one HTTP/2 connection allows (net/http's server allows 250
// streams): the client opens more connections instead of queueing them.
func TestSharedClientCarriesMoreCallsThanStreams(t *testing.T) {
	const calls = 600
	var mu sync.Mutex
	inFlight, all := 0, make(chan struct{})
	u := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		if inFlight == calls {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-r.Context().Done():
			return
		}
		echoProto(w, r)
	}), true)
	rt := newCleartextH2(newPoolTransport())
	defer rt.CloseIdleConnections()
	rt.h2cHosts.Store(hostPort(strings.TrimPrefix(u, "http://")), struct{}{}) // as an earlier answer would have
	// Not a timed assertion: a client that queued calls past the stream
	// limit would wait forever, and this bounds the wait.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, calls)
	for range calls {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			res, err := rt.RoundTrip(req)
			if err == nil {
				var b []byte
				b, err = io.ReadAll(res.Body)
				res.Body.Close()
				if err == nil && !strings.HasPrefix(string(b), "HTTP/2.0") {
					err = fmt.Errorf("answered %q, want HTTP/2.0", b)
				}
			}
			errs <- err
		}()
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Fatalf("a call of %d held at once: %v", calls, err)
		}
	}
}

// TestSharedClientHTTPSUnchanged: https is left to net/http, which
// negotiates HTTP/2 by ALPN when the server offers it.
func TestSharedClientHTTPSUnchanged(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("server offers h2: %v", h2), func(t *testing.T) {
			ts := httptest.NewUnstartedServer(http.HandlerFunc(echoProto))
			ts.EnableHTTP2 = h2
			ts.StartTLS()
			defer ts.Close()
			tr := newPoolTransport()
			tr.TLSClientConfig = ts.Client().Transport.(*http.Transport).TLSClientConfig
			rt := newCleartextH2(tr)
			defer rt.CloseIdleConnections()
			want := "HTTP/1.1 x"
			if h2 {
				want = "HTTP/2.0 x"
			}
			if got := post(t, rt, ts.URL, "x"); got != want {
				t.Fatalf("answered %q, want %q", got, want)
			}
		})
	}
}

// With net/http's HTTP/2 client turned off (GODEBUG=http2client=0, the
// usual workaround for an HTTP/2 problem), a server advertising h2c is
// called over HTTP/1.1: net/http would refuse every h2c call.
func TestSharedClientHonoursHTTP2ClientOff(t *testing.T) {
	t.Setenv("GODEBUG", "http2client=0")
	u := startServer(t, http.HandlerFunc(echoProto), true)
	rt := newCleartextH2(newPoolTransport())
	defer rt.CloseIdleConnections()
	for i := range 3 {
		body := fmt.Sprintf("call %d", i)
		if got, want := post(t, rt, u, body), "HTTP/1.1 "+body; got != want {
			t.Fatalf("call %d answered %q, want %q", i, got, want)
		}
	}
}

func TestHTTP2ClientOff(t *testing.T) {
	for godebug, want := range map[string]bool{
		"":                            false,
		"http2client=0":               true,
		"http2client=1":               false,
		"x=1, http2client=0":          true,
		"http2client=0,http2client=1": false,
		"http2debug=1":                false,
	} {
		if got := http2ClientOff(godebug); got != want {
			t.Errorf("http2ClientOff(%q) = %v, want %v", godebug, got, want)
		}
	}
}
