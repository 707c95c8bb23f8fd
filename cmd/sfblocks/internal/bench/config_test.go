package bench

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseMix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		given      string
		wantSearch float64
		wantErr    string // part of the error; "" for none
		wantString string
	}{
		{"search=1", 1, "", "search=1,insert=0"},
		{"search=0.8,insert=0.2", 0.8, "", "search=0.8,insert=0.2"},
		{"search=3, insert=1", 0.75, "", "search=0.75,insert=0.25"},
		{"insert=1", 0, "", "search=0,insert=1"},
		{"search=0,insert=0", 0, "add up to 0", ""},
		{"update=1", 0, `unknown block "update"`, ""},
		{"search=-1", 0, "non-negative weights", ""},
		{"search", 0, "write search=WEIGHT,insert=WEIGHT", ""},
		{"", 0, "write search=WEIGHT,insert=WEIGHT", ""},
	}
	for _, tt := range tests {
		m, err := ParseMix(tt.given)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--mix") {
				t.Errorf("ParseMix(%q) error %v, want one naming --mix and saying %q", tt.given, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("ParseMix(%q): %v", tt.given, err)
		case m.Search != tt.wantSearch || m.String() != tt.wantString:
			t.Errorf("ParseMix(%q) = %v (%s), want search share %v (%s)", tt.given, m.Search, m, tt.wantSearch, tt.wantString)
		}
	}
}

func TestParsePaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		given   string
		want    []Path
		wantErr bool
	}{
		{"sync,baseline", []Path{PathSync, PathBaseline}, false},
		{" durable , sync", []Path{PathDurable, PathSync}, false},
		{"baseline", []Path{PathBaseline}, false},
		{"sync,bogus", nil, true},
		{"", nil, true},
		{"sync,", nil, true},
	}
	for _, tt := range tests {
		got, err := ParsePaths(tt.given)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("ParsePaths(%q) = %v, %v; want %v, error %v", tt.given, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "use sync, durable or baseline") {
			t.Errorf("ParsePaths(%q) error %q does not say what to use", tt.given, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string // part of the error; "" for none
	}{
		{"defaults", func(*Config) {}, ""},
		{"floors preset", func(c *Config) { c.Preset = PresetFloors }, ""},
		{"json, no warmup, latency", func(c *Config) { c.Format, c.Warmup, c.Latency = FormatJSON, 0, time.Second }, ""},
		{"no paths", func(c *Config) { c.Paths = nil }, "--path is empty"},
		{"unknown path", func(c *Config) { c.Paths = []Path{"async"} }, `--path "async"`},
		{"no clients", func(c *Config) { c.Clients = 0 }, "must be positive"},
		{"no workers", func(c *Config) { c.Workers = 0 }, "must be positive"},
		{"no slots", func(c *Config) { c.MaxInFlight = 0 }, "must be positive"},
		{"no rounds", func(c *Config) { c.Rounds = 0 }, "must be positive"},
		{"no window", func(c *Config) { c.Duration = 0 }, "--duration must be positive"},
		{"negative warmup", func(c *Config) { c.Warmup = -time.Second }, "not negative"},
		{"negative latency", func(c *Config) { c.Latency = -time.Second }, "not negative"},
		{"unknown format", func(c *Config) { c.Format = "csv" }, `--format "csv": use table or json`},
		{"unknown preset", func(c *Config) { c.Preset = "ceilings" }, "use floors, cost or all"},
		{"mix out of range", func(c *Config) { c.Mix.Search = 2 }, "not in [0,1]"},
	}
	for _, tt := range tests {
		cfg := DefaultConfig()
		tt.change(&cfg)
		err := cfg.Validate()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
	if err := (Config{}).Validate(); err == nil {
		t.Error("the zero Config validates; its zero counts should be refused")
	}
}

func TestBaselineConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(*BaselineConfig)
		wantErr bool
	}{
		{"with an instance", func(c *BaselineConfig) { c.InstanceURL = "http://127.0.0.1:1" }, false},
		{"defaults lack the instance", func(*BaselineConfig) {}, true},
		{"no slots", func(c *BaselineConfig) { c.InstanceURL, c.MaxInFlight = "http://127.0.0.1:1", 0 }, true},
	}
	for _, tt := range tests {
		cfg := DefaultBaselineConfig()
		tt.change(&cfg)
		if err := cfg.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%s: Validate() = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}
