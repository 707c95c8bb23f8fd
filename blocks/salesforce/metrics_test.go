package salesforce_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
)

func TestMetricsCountRequestsAndUsage(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := salesforce.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := salesforce.NewMetrics(reg); err == nil {
		t.Error("registering twice did not fail")
	}
	c, _, _ := simClient(t, sfsim.Options{}, salesforce.WithHTTPClient(m.Instrument(salesforce.SharedHTTPClient(), salesforce.KindData)),
		salesforce.WithUsageObserver(func(u salesforce.Usage) { m.ObserveUsage("prod", u) }))
	if _, err := c.Query(context.Background(), "SELECT Id FROM Contact LIMIT 1"); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP sfblocks_salesforce_requests_total HTTP requests to Salesforce by kind (data: REST API, token: OAuth token endpoint, i.e. token refreshes), method and status code.
# TYPE sfblocks_salesforce_requests_total counter
sfblocks_salesforce_requests_total{code="200",kind="data",method="get"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sfblocks_salesforce_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "sfblocks_salesforce_api_used_requests", "sfblocks_salesforce_api_allocated_requests"); n != 2 {
		t.Errorf("usage gauges = %d series, want 2", n)
	}
}
