package backup_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

func stagedOptions(t *testing.T) (backup.Options, *[]progress.Event) {
	t.Helper()
	o := stdOptions(t)
	o.Mode = backup.ModeAuto
	var events []progress.Event
	var mu sync.Mutex // reporters must be safe for concurrent use
	o.Reporter = progress.Func(func(e progress.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	})
	return o, &events
}

func TestChooseMode(t *testing.T) {
	can := engine.HelperImage{CanRun: true}
	cannot := engine.HelperImage{Reason: "the engine runs linux/arm64"}
	tests := []struct {
		setting string
		img     engine.HelperImage
		want    string
	}{
		{"auto", can, backup.ModeStaged},
		{"", can, backup.ModeStaged},
		{"staged", can, backup.ModeStaged},
		{"stream", can, backup.ModeStream},
		{"auto", cannot, backup.ModeStream},
		{"staged", cannot, backup.ModeStream},
	}
	for _, tt := range tests {
		got, why := backup.ChooseMode(tt.setting, tt.img)
		if got != tt.want || why == "" {
			t.Errorf("ChooseMode(%q, canRun=%v) = %q (%q), want %q with a reason", tt.setting, tt.img.CanRun, got, why, tt.want)
		}
		if !tt.img.CanRun && !strings.Contains(why, "arm64") {
			t.Errorf("reason %q does not say why the helper cannot run", why)
		}
	}
}

func TestRunStaged(t *testing.T) {
	f := stdEngine()
	o, _ := stagedOptions(t)
	res, err := backup.Run(t.Context(), f, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Mode != backup.ModeStaged {
		t.Fatalf("mode %q (%s), want staged", res.Mode, res.ModeReason)
	}
	// Staging volumes are created, labelled as ours, for both volumes.
	var created []string
	for _, v := range f.CreatedVolumes() {
		created = append(created, v.Name)
		if v.Labels[engine.LabelStaging] != "true" || v.Labels[engine.LabelProject] != "p" {
			t.Errorf("staging volume %s labels %v", v.Name, v.Labels)
		}
	}
	equal(t, "staging volumes", created, []string{"p_cache-autobackup-staging", "p_dbdata-autobackup-staging"})

	// Each sync helper runs twice: the pre-copy before anything stops,
	// the delta while stopped; the archive is read after the restart.
	calls := f.Calls()
	at := func(op, id string) []int {
		var out []int
		for i, c := range calls {
			if c.Op == op && (id == "" || c.ID == id) && (op != "exec" || strings.Contains(c.Detail, " sync ")) {
				out = append(out, i)
			}
		}
		return out
	}
	syncs := at("exec", "")
	if len(syncs) != 4 {
		t.Fatalf("sync runs at %v, want 2 per volume", syncs)
	}
	firstStop, dbStopped, firstStart := at("stop", "")[0], at("stopped", "db-1")[0], at("start", "db-1")[0] // db starts first
	if syncs[1] > firstStop || syncs[2] < dbStopped || syncs[3] > firstStart {
		t.Errorf("sync runs at %v; want two before the first stop (%d) and two between the last stop (%d) and the first start (%d)", syncs, firstStop, dbStopped, firstStart)
	}
	for n, i := range syncs {
		// Only the delta-sync keeps the index (and skips the flush).
		if delta := n >= 2; strings.Contains(calls[i].Detail, "--keep-index") != delta {
			t.Errorf("sync %d (%q): --keep-index must be given to the delta-sync only", n, calls[i].Detail)
		}
	}
	for _, i := range at("copy-from", "") {
		if i < firstStart {
			t.Errorf("staging copy archived at call %d, before the services were started again (%d)", i, firstStart)
		}
	}
	noHelpersLeft(t, f)
	m, path, err := archive.Open(o.Dir, o.Project.Name, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Mode != archive.ModeStaged {
		t.Errorf("manifest mode %q", m.Mode)
	}
	equal(t, "archived db files", archivedFiles(t, path, m, "p_dbdata"), dbFiles)
}

func TestRunStagedFallsBackWhenDiskIsShort(t *testing.T) {
	f := stdEngine()
	f.Free = 10 // bytes
	o, events := stagedOptions(t)
	res, err := backup.Run(t.Context(), f, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Mode != backup.ModeStream || !strings.Contains(res.ModeReason, "free space") {
		t.Errorf("mode %q (%s), want the stream fallback for lack of space", res.Mode, res.ModeReason)
	}
	warned := false
	for _, e := range *events {
		warned = warned || e.Kind == progress.Warning && strings.Contains(e.Message, "falling back")
	}
	if !warned {
		t.Error("no warning about the fallback")
	}
	noHelpersLeft(t, f)
	allRunning(t, f, "db-1", "app-1", "web-1")
}

func TestRunStagedDeltaFailureRestarts(t *testing.T) {
	f := stdEngine()
	o, _ := stagedOptions(t)
	// The second sync exec into a helper is its delta, with services stopped.
	var mu sync.Mutex
	runs := map[string]int{}
	f.ExecFn = func(ctx context.Context, id string, spec engine.ExecSpec) (int, string, error) {
		mu.Lock()
		runs[id]++
		n := runs[id]
		mu.Unlock()
		if n == 2 && f.IsServing(id) {
			return 1, "helper: write /s/data/x: no space left on device", nil
		}
		return f.DefaultExec(ctx, id, spec)
	}
	_, err := backup.Run(t.Context(), f, o)
	wantErrContains(t, err, "delta sync", "no space left")
	if errors.Is(err, backup.ErrPreflight) {
		t.Error("a failure after the stop is reported as preflight")
	}
	allRunning(t, f, "db-1", "app-1", "web-1")
	noHelpersLeft(t, f)
	noBackupLeft(t, o.Dir)
}
