package plugin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

// TestPrinterProgress: on a terminal a copy's progress line is drawn and
// redrawn in place; without one there are no escape codes, only a plain
// line now and then on a long copy.
func TestPrinterProgress(t *testing.T) {
	for _, tty := range []bool{true, false} {
		var buf bytes.Buffer
		p := &printer{w: &buf, tty: tty, start: map[string]time.Time{}}
		start := time.Now().Add(-time.Minute) // a long copy
		p.Report(progress.Event{Kind: progress.VolumeStart, Volume: "shop_db", Time: start})
		for i := 1; i <= 3; i++ {
			p.lastLive = time.Time{} // as if the redraw interval had passed
			p.Report(progress.Event{Kind: progress.VolumeBytes, Volume: "shop_db", Bytes: int64(i) << 20, Total: 4 << 20, Archive: true})
		}
		p.Report(progress.Event{Kind: progress.VolumeDone, Volume: "shop_db", Bytes: 8 << 20, Total: 4 << 20, Time: time.Now()})
		out := buf.String()
		if tty {
			if n := strings.Count(out, "\r\033[K  archive shop_db:"); n != 3 {
				t.Errorf("tty: %d redraws of the progress line, want 3:\n%q", n, out)
			}
			if !strings.Contains(out, "ETA") || !strings.Contains(out, "\r\033[Kcopied   shop_db") {
				t.Errorf("tty: no ETA, or the line is not cleared before the next:\n%q", out)
			}
			continue
		}
		if strings.ContainsAny(out, "\r\033") {
			t.Errorf("no tty: escape codes in the output:\n%q", out)
		}
		if !strings.Contains(out, "\narchive shop_db: ") || !strings.Contains(out, "copied   shop_db") {
			t.Errorf("no tty: want a plain progress line and the copied line:\n%s", out)
		}
	}
}

// TestPrinterPhases: the volume lines say what the phase does with the
// data (restoring, not copying); verify and upload, which print results
// of their own, only draw the live line, and clear it before the result.
func TestPrinterPhases(t *testing.T) {
	start := time.Now().Add(-time.Minute)
	for _, tc := range []struct {
		phase string
		kind  progress.Kind
		live  string // the live line, after \r\033[K
		lines []string
	}{
		{"restore", progress.VolumeBytes, "  restoring shop_db: 1.0 MB", []string{"restoring shop_db\n", "restored shop_db: "}},
		{"verify", progress.VolumeBytes, "  verifying shop_db: 1.0 MB", nil},
		{"upload", progress.VolumeBytes, "  uploading shop_db: 1.0 MB", nil},
		{"snapshot", progress.VolumeBytes, "  copying shop_db: 1.0 MB", []string{"copying  shop_db\n", "copied   shop_db: "}},
	} {
		var buf bytes.Buffer
		p := &printer{w: &buf, tty: true, start: map[string]time.Time{}}
		p.Report(progress.Event{Kind: progress.Phase, Message: tc.phase})
		p.Report(progress.Event{Kind: progress.VolumeStart, Volume: "shop_db", Total: 4 << 20, Time: start})
		p.Report(progress.Event{Kind: tc.kind, Volume: "shop_db", Bytes: 1 << 20, Total: 4 << 20})
		p.Report(progress.Event{Kind: progress.VolumeDone, Volume: "shop_db", Bytes: 4 << 20, Total: 1 << 20, Time: time.Now()})
		out := buf.String()
		if !strings.Contains(out, "\r\033[K"+tc.live) {
			t.Errorf("%s: no live line %q:\n%q", tc.phase, tc.live, out)
		}
		if len(tc.lines) == 0 && !strings.HasSuffix(out, "\r\033[K") {
			t.Errorf("%s: the live line is not cleared at the end:\n%q", tc.phase, out)
		}
		for _, l := range tc.lines {
			if !strings.Contains(out, l) {
				t.Errorf("%s: no line %q:\n%q", tc.phase, l, out)
			}
		}
		if len(tc.lines) == 0 && strings.Contains(out, "\n") {
			t.Errorf("%s: lines besides the live one:\n%q", tc.phase, out)
		}
	}
}

// --progress picks the renderer: json writes one object per event, tty
// and plain force the live line on or off, quiet keeps only warnings.
func TestProgressModes(t *testing.T) {
	events := []progress.Event{
		{Kind: progress.VolumeStart, Volume: "shop_db", Time: time.Now().Add(-time.Minute)},
		{Kind: progress.VolumeBytes, Volume: "shop_db", Bytes: 1 << 20, Total: 4 << 20},
		{Kind: progress.Warning, Message: "disk almost full"},
		{Kind: progress.VolumeDone, Volume: "shop_db", Bytes: 4 << 20, Total: 1 << 20, Time: time.Now()},
	}
	render := func(mode string) string {
		var buf bytes.Buffer
		r := (&globalOptions{progress: mode}).reporter(&buf, false)
		for _, e := range events {
			r.Report(e)
		}
		return buf.String()
	}

	lines := strings.Split(strings.TrimSpace(render("json")), "\n")
	if len(lines) != len(events) {
		t.Fatalf("json: %d lines for %d events:\n%s", len(lines), len(events), strings.Join(lines, "\n"))
	}
	for i, l := range lines {
		var got struct {
			Kind, Volume, Message string
			Bytes                 int64
			Time                  time.Time
		}
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("json line %d %q: %v", i, l, err)
		}
		if got.Kind != string(events[i].Kind) || got.Volume != events[i].Volume || got.Message != events[i].Message || got.Bytes != events[i].Bytes || got.Time.IsZero() {
			t.Errorf("json line %d = %+v, want the event %+v", i, got, events[i])
		}
	}
	if out := render("tty"); !strings.Contains(out, "\r\033[K") {
		t.Errorf("tty: no live line:\n%q", out)
	}
	if out := render("plain"); strings.ContainsAny(out, "\r\033") || !strings.Contains(out, "copied   shop_db") {
		t.Errorf("plain: escape codes or no copied line:\n%q", out)
	}
	if out := render("quiet"); strings.TrimSpace(out) != "WARNING  disk almost full" {
		t.Errorf("quiet: %q, want only the warning", out)
	}
}
