package plugin

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStampWriter(t *testing.T) {
	at := time.Date(2026, 12, 1, 2, 0, 3, 0, time.FixedZone("CET", 3600))
	var got strings.Builder
	var mu sync.Mutex
	w := &stampWriter{w: &got, mu: &mu, now: func() time.Time { return at }, start: true}
	for _, s := range []string{"20261201-020000-ab12\n", "autobackup: stop db: ", "timeout\nTry: docker", " compose ps\n"} {
		if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	want := "2026-12-01T02:00:03+01:00 20261201-020000-ab12\n" +
		"2026-12-01T02:00:03+01:00 autobackup: stop db: timeout\n" +
		"2026-12-01T02:00:03+01:00 Try: docker compose ps\n"
	if got.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", got.String(), want)
	}
}
