package plugin

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/docker/cli/cli/command"
)

// logTimestampsEnv, set by the scheduler entries that schedule install
// writes, starts every line the plugin prints with the time: their output
// is appended to autobackup.log, where a bare backup ID or error says
// nothing about when it happened.
const logTimestampsEnv = "AUTOBACKUP_LOG_TIMESTAMPS"

// CLIOptions are the docker CLI options main passes to plugin.Run: with
// AUTOBACKUP_LOG_TIMESTAMPS set, stdout and stderr get the time in front of
// each line.
func CLIOptions() []command.CLIOption {
	if os.Getenv(logTimestampsEnv) == "" {
		return nil
	}
	var mu sync.Mutex // both streams usually go to the same file
	now := time.Now
	return []command.CLIOption{
		command.WithOutputStream(&stampWriter{w: os.Stdout, mu: &mu, now: now, start: true}),
		command.WithErrorStream(&stampWriter{w: os.Stderr, mu: &mu, now: now, start: true}),
	}
}

// stampWriter writes the time (RFC 3339, local) at the start of every line.
type stampWriter struct {
	w     io.Writer
	mu    *sync.Mutex
	now   func() time.Time
	start bool // the next byte starts a line
}

func (s *stampWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []byte
	for _, b := range p {
		if s.start {
			out = append(out, s.now().Format(time.RFC3339)...)
			out = append(out, ' ')
			s.start = false
		}
		out = append(out, b)
		s.start = b == '\n'
	}
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
