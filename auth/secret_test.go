package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sfblocks/sfblocks/worker/workertest"
)

func TestSecretRedactsEverywhere(t *testing.T) {
	const v = "super-secret-value"
	s := Secret(v)
	log, buf := workertest.NewLogger()
	log.Info().Stringer("s", s).Interface("i", s).Object("o", s).Msg("x")
	js, _ := json.Marshal(map[string]any{"s": s, "p": &s})
	txt, _ := s.MarshalText()
	outs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %X %d %10s", s, s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v", struct{ S Secret }{s}), fmt.Sprintf("%+v", &struct{ S Secret }{s}),
		string(js), string(txt), buf.String(),
	}
	for _, o := range outs {
		if strings.Contains(o, v) || strings.Contains(o, fmt.Sprintf("%x", v)) {
			t.Errorf("secret leaked in %q", o)
		}
	}
	if s.Reveal() != v {
		t.Fatal("Reveal lost the value")
	}
}

func TestErrorCodes(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		target    error
		transient bool
	}{
		{"auth failed", newError(CodeAuthFailed, "a", "m", nil), ErrAuthFailed, false},
		{"wrapped unavailable", fmt.Errorf("calling: %w", newError(CodeUnavailable, "a", "m", errors.New("x"))), ErrUnavailable, true},
		{"unknown account", newError(CodeUnknownAccount, "a", "", nil), ErrUnknownAccount, false},
		{"joined config", errors.Join(newError(CodeInvalidConfig, "a", "x", nil)), ErrInvalidConfig, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.target) {
				t.Fatalf("errors.Is(%v, %v) = false", tt.err, tt.target)
			}
			if errors.Is(tt.err, ErrNotAuthorized) {
				t.Fatal("matched a different code")
			}
			if IsTransient(tt.err) != tt.transient {
				t.Fatalf("IsTransient = %v, want %v", !tt.transient, tt.transient)
			}
			if CodeOf(tt.err) != tt.target.(*Error).Code {
				t.Fatalf("CodeOf = %q", CodeOf(tt.err))
			}
		})
	}
}
