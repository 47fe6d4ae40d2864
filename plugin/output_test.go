package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/progress"
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
