package backup

import (
	"sync"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

// TestWhileBusy: while a helper restores a volume the reporter hears that
// it is still at it, and nothing once it is done.
func TestWhileBusy(t *testing.T) {
	var mu sync.Mutex
	var got []progress.Event
	r := progress.Func(func(e progress.Event) { mu.Lock(); got = append(got, e); mu.Unlock() })
	stop := whileBusy(r, "shop_db", 42)
	time.Sleep(700 * time.Millisecond)
	stop()
	mu.Lock()
	n := len(got)
	mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if n == 0 || len(got) != n {
		t.Fatalf("%d events while busy, %d after stop", n, len(got)-n)
	}
	for _, e := range got {
		if e.Kind != progress.VolumeBusy || e.Volume != "shop_db" || e.Total != 42 {
			t.Errorf("event %+v", e)
		}
	}
	whileBusy(nil, "x", 0)() // no reporter: nothing to do
}
