package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
)

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim", "sim [flags]", stderr)
	addr := fs.String("addr", envOr("SFBLOCKS_SIM_ADDR", "127.0.0.1:8443"), "listen address (env SFBLOCKS_SIM_ADDR)")
	var opts sfsim.Options
	fs.StringVar(&opts.ClientID, "client-id", envOr("SFBLOCKS_SIM_CLIENT_ID", sfsim.DefaultClientID), "consumer key the simulator accepts (env SFBLOCKS_SIM_CLIENT_ID)")
	fs.StringVar(&opts.ClientSecret, "client-secret", envOr("SFBLOCKS_SIM_CLIENT_SECRET", sfsim.DefaultClientSecret), "consumer secret the simulator accepts (env SFBLOCKS_SIM_CLIENT_SECRET)")
	callbacks := fs.String("callback-urls", "", "comma-separated registered redirect URIs (default: any http loopback URL)")
	fs.DurationVar(&opts.SessionTimeout, "session-timeout", 2*time.Hour, "access token lifetime")
	fs.BoolVar(&opts.RotateRefreshTokens, "rotate-refresh-tokens", false, "turn on refresh token rotation")
	fs.IntVar(&opts.DailyAPILimit, "daily-api-limit", 15000, "daily REST API request allocation")
	fs.IntVar(&opts.ConcurrentRequestLimit, "concurrent-request-limit", sfsim.DefaultConcurrentRequestLimit, "long-running requests the org runs at once (25 production, 5 Developer/trial)")
	fs.DurationVar(&opts.LongRequestThreshold, "long-request-threshold", sfsim.DefaultLongRequestThreshold, "how long a request runs before it counts against the concurrent-request limit")
	fs.StringVar(&opts.MyDomainHost, "my-domain-host", envOr("SFBLOCKS_SIM_MY_DOMAIN_HOST", "localhost"), "host name that stands for the org's My Domain (client credentials and instance_url); in docker-compose, the service name")
	fs.DurationVar(&opts.TokenLatency, "token-latency", 0, "delay added to every token grant")
	fs.BoolVar(&opts.H2C, "h2c", false, "also speak cleartext HTTP/2 on the same port and advertise it (Alt-Svc), which sfblocks's client then takes: one connection for every call in flight")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *callbacks != "" {
		opts.CallbackURLs = strings.Split(*callbacks, ",")
	}
	s, err := sfsim.Start(*addr, opts)
	if err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	defer s.Close()
	fmt.Fprintf(stdout, "Salesforce simulator listening on %s\n", *addr)
	fmt.Fprintf(stdout, "  login URL (login.salesforce.com):  %s\n", s.LoginURL())
	fmt.Fprintf(stdout, "  My Domain / instance URL:          %s\n", s.MyDomainURL())
	fmt.Fprintf(stdout, "  client id:                         %s\n", opts.ClientID)
	fmt.Fprintf(stdout, "  client secret:                     %s\n", opts.ClientSecret)
	fmt.Fprintf(stdout, "  REST:   %s/services/data/v%s/\n", s.MyDomainURL(), sfsim.LatestAPIVersion)
	fmt.Fprintf(stdout, "  OAuth:  %s/services/oauth2/{authorize,token,revoke,introspect}\n", s.LoginURL())
	fmt.Fprintf(stdout, "  faults and counters: %s/_sim/faults, %s/_sim/stats\n", s.MyDomainURL(), s.MyDomainURL())
	fmt.Fprintf(stdout, "Try: curl -s -d grant_type=client_credentials -d client_id=%s -d client_secret=%s %s/services/oauth2/token\n",
		opts.ClientID, opts.ClientSecret, s.MyDomainURL())
	<-ctx.Done()
	fmt.Fprintln(stdout, "simulator stopped")
	return nil
}
