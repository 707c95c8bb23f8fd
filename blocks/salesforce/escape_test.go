package salesforce

import "testing"

func TestEscapeSOQL(t *testing.T) {
	tests := []struct {
		given, want, wantLike string
	}{
		{"plain", "plain", "plain"},
		{"O'Brien", `O\'Brien`, `O\'Brien`},
		{`' OR Name != '`, `\' OR Name != \'`, `\' OR Name != \'`},
		{`\' OR 1=1`, `\\\' OR 1=1`, `\\\' OR 1=1`},
		{`say "hi"`, `say \"hi\"`, `say \"hi\"`},
		{"a\nb\rc\td\be\ff", `a\nb\rc\td\be\ff`, `a\nb\rc\td\be\ff`},
		{"100%_done", "100%_done", `100\%\_done`},
		{"nul\x00", `nul\u0000`, `nul\u0000`},
		{"café", "café", "café"},
	}
	for _, tt := range tests {
		if got := EscapeSOQLString(tt.given); got != tt.want {
			t.Errorf("EscapeSOQLString(%q) = %q, want %q", tt.given, got, tt.want)
		}
		if got := EscapeSOQLLike(tt.given); got != tt.wantLike {
			t.Errorf("EscapeSOQLLike(%q) = %q, want %q", tt.given, got, tt.wantLike)
		}
	}
}

func TestEscapeSOSL(t *testing.T) {
	tests := []struct{ given, want string }{
		{"+1 415 555 0100", `\+1 415 555 0100`},
		{"ada@example.com", "ada@example.com"},
		{"a} OR {b", `"a\} OR \{b"`},
		{"Tom and Jerry", `"Tom and Jerry"`},
		{"Andy Orr", "Andy Orr"},
		{`?&|!{}[]()^~*:\"'+-`, `\?\&\|\!\{\}\[\]\(\)\^\~\*\:\\\"\'\+\-`},
	}
	for _, tt := range tests {
		if got := EscapeSOSL(tt.given); got != tt.want {
			t.Errorf("EscapeSOSL(%q) = %q, want %q", tt.given, got, tt.want)
		}
	}
}

func BenchmarkEscapeSOQLString(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = EscapeSOQLString("+1 415 555 0100")
		_ = EscapeSOQLString("O'Brien \\ test")
	}
}
