package workertest

import (
	"bytes"
	"strings"
	"sync"

	"github.com/rs/zerolog"
)

// LogBuffer collects log output written from any goroutine while the test
// reads it. Its zero value is ready to use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the lines written so far, without the empty last one.
func (b *LogBuffer) Lines() []string {
	s := strings.TrimRight(b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Logger returns a JSON zerolog logger writing to b at level and above.
func (b *LogBuffer) Logger(level zerolog.Level) zerolog.Logger {
	return zerolog.New(b).Level(level).With().Timestamp().Logger()
}

// NewLogger returns a [LogBuffer] and a debug-level logger writing to it:
// the most a test can see of what a component logs.
func NewLogger() (zerolog.Logger, *LogBuffer) {
	b := &LogBuffer{}
	return b.Logger(zerolog.DebugLevel), b
}
