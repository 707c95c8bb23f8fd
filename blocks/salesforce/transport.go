package salesforce

import (
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// The connections every Salesforce call shares.
//
// Over HTTP/1.1 each call in flight holds a connection of its own, and with
// it two goroutines (the connection's read and write loops) and two
// buffers: at 1000 calls in flight that is about a third of a worker's
// memory. Over HTTP/2 one connection carries hundreds of calls, so:
//
//   - https (Salesforce) negotiates HTTP/2 by ALPN when the server offers it
//     and falls back to HTTP/1.1 when it does not, as net/http always does;
//   - http:// (the simulator, a test server) has no ALPN. The client calls
//     it over HTTP/1.1 until an answer advertises cleartext HTTP/2 on the
//     same port (Alt-Svc: h2c=":PORT", RFC 7838), as the simulator's
//     listener does, and over h2c with prior knowledge from then on. No
//     guessing: a server that did not offer it is never sent an HTTP/2
//     preface (a Go HTTP/1.1 server would hand "PRI *" to its handler).
//     Calls through a proxy stay on HTTP/1.1.

// newPoolTransport returns the transport settings every call shares; the
// protocols are left to the caller.
func newPoolTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Half of net/http's 4 KB each: every HTTP/1.1 call in flight holds
		// a connection and its two buffers (8 MB at 1000 calls), and a
		// Salesforce request (headers, a query or a record) and a
		// response's headers fit in 2 KB. Larger writes and reads bypass the
		// buffers.
		WriteBufferSize: 2 << 10,
		ReadBufferSize:  2 << 10,
		HTTP2: &http.HTTP2Config{
			// An HTTP/2 connection carries every call to its host, so one
			// that died silently (a NAT dropping it, a peer gone without a
			// FIN) would take every call after it too: a ping after 15 s
			// without a frame finds it out, and the next calls dial anew.
			SendPingTimeout: 15 * time.Second,
		},
	}
}

var (
	sharedHTTPClient = &http.Client{Transport: newCleartextH2(newPoolTransport())}
	http1Client      = &http.Client{Transport: newPoolTransport()}
)

// No overall Timeout on either client: every call carries a context
// deadline instead, so that a job's own deadline is what bounds it.

// SharedHTTPClient returns the process-wide HTTP client that clients use by
// default: keep-alive pooling with up to 512 idle connections per host,
// HTTP/2 by ALPN on https, and on http:// HTTP/1.1 until the server
// advertises cleartext HTTP/2 (Alt-Svc h2c on its own port), h2c after.
func SharedHTTPClient() *http.Client { return sharedHTTPClient }

// HTTP1Client returns a client with the pool of [SharedHTTPClient] that
// calls http:// URLs over HTTP/1.1 only, one connection per call in flight
// (https still negotiates HTTP/2 by ALPN). The bench's baseline uses it, to
// measure net/http's default.
func HTTP1Client() *http.Client { return http1Client }

// cleartextH2 sends http:// requests over h2c to hosts that advertised it,
// and everything else through h1.
type cleartextH2 struct {
	h1, h2c *http.Transport
	// off: GODEBUG turns the HTTP/2 client off; every call goes by h1.
	off      bool
	h2cHosts sync.Map // host:port → struct{}: answered with Alt-Svc h2c on its own port
}

func newCleartextH2(h1 *http.Transport) *cleartextH2 {
	h2c := newPoolTransport()
	h2c.Proxy = nil // proxied calls never get here
	var p http.Protocols
	p.SetUnencryptedHTTP2(true) // and not HTTP1: prior knowledge
	h2c.Protocols = &p
	return &cleartextH2{h1: h1, h2c: h2c, off: http2ClientOff(os.Getenv("GODEBUG"))}
}

// http2ClientOff reports whether godebug (the GODEBUG variable) turns
// net/http's HTTP/2 client off (http2client=0, the usual workaround for an
// HTTP/2 problem; the last setting wins, as in the runtime). net/http then
// refuses the h2c transport's every call, so the client stays on HTTP/1.1.
func http2ClientOff(godebug string) bool {
	off := false
	for kv := range strings.SplitSeq(godebug, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == "http2client" {
			off = v == "0"
		}
	}
	return off
}

func (t *cleartextH2) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || t.off {
		return t.h1.RoundTrip(req)
	}
	if proxy, err := http.ProxyFromEnvironment(req); err != nil || proxy != nil {
		return t.h1.RoundTrip(req)
	}
	host := hostPort(req.URL.Host)
	if _, ok := t.h2cHosts.Load(host); ok {
		return t.h2c.RoundTrip(req)
	}
	res, err := t.h1.RoundTrip(req)
	if err == nil && offersH2C(res.Header.Values("Alt-Svc"), host) {
		if _, loaded := t.h2cHosts.LoadOrStore(host, struct{}{}); !loaded {
			// The HTTP/1.1 connections opened until now would idle in the
			// pool, each with its two goroutines, until IdleConnTimeout.
			t.h1.CloseIdleConnections()
		}
	}
	return res, err
}

// CloseIdleConnections closes both transports' idle connections, as
// [http.Client.CloseIdleConnections] expects of a transport.
func (t *cleartextH2) CloseIdleConnections() {
	t.h1.CloseIdleConnections()
	t.h2c.CloseIdleConnections()
}

// hostPort returns host with its port, 80 when it has none.
func hostPort(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), "80")
}

// offersH2C reports whether the Alt-Svc values (RFC 7838) offer h2c on the
// host and port the answer came from (h2c=":PORT"): a server that speaks
// cleartext HTTP/2 beside HTTP/1.1 on the same listener, as the simulator
// does. Alternatives on other hosts or ports are not taken.
func offersH2C(altSvc []string, host string) bool {
	_, port, _ := net.SplitHostPort(host)
	for _, v := range altSvc {
		for entry := range strings.SplitSeq(v, ",") {
			alt, _, _ := strings.Cut(strings.TrimSpace(entry), ";")
			proto, authority, ok := strings.Cut(alt, "=")
			if !ok || strings.TrimSpace(proto) != "h2c" {
				continue
			}
			h, p, err := net.SplitHostPort(strings.Trim(strings.TrimSpace(authority), `"`))
			if err == nil && p == port && (h == "" || net.JoinHostPort(h, p) == host) {
				return true
			}
		}
	}
	return false
}
