package backup_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

// phases counts the phase events named name.
func phases(r *progress.Recorder, name string) int {
	n := 0
	for _, e := range r.Of(progress.Phase) {
		if e.Kind == progress.Phase && e.Message == name {
			n++
		}
	}
	return n
}

// Every snapshot method, and a failure in each phase it has while the
// services are stopped or after: the services are restarted exactly once,
// no helper is left, and only a complete run leaves a backup.
func TestSnapshotMethodsRestartOnce(t *testing.T) {
	methods := []struct {
		name     string
		mode     string
		shared   bool
		noDirect bool
		wantMode string
		capture  string // command of the exec (or op) that captures while stopped
	}{
		{"staged", backup.ModeStaged, true, false, backup.ModeStaged, "--keep-index"},
		{"direct", backup.ModeStream, true, false, backup.ModeStream, " pack "},
		{"api", backup.ModeStream, false, true, backup.ModeStream, "copy-from"},
	}
	for _, m := range methods {
		for _, fail := range []string{"", "capture", "finish"} {
			if fail == "finish" && m.name != "staged" {
				continue // only staged does work that can fail after the restart
			}
			t.Run(m.name+"/"+cmpOr(fail, "ok"), func(t *testing.T) {
				f := stdEngine()
				f.Shared = m.shared
				o := stdOptions(t)
				o.Mode, o.NoDirect = m.mode, m.noDirect
				rec := &progress.Recorder{}
				o.Reporter = rec
				boom := fmt.Errorf("boom in %s", fail)
				failing := func(cmd string) bool {
					switch fail {
					case "capture":
						return strings.Contains(cmd, m.capture) && !strings.Contains(cmd, "--probe")
					case "finish":
						return strings.Contains(cmd, " pack ") && !strings.Contains(cmd, "--probe")
					}
					return false
				}
				f.ExecFn = func(ctx context.Context, id string, spec engine.ExecSpec) (int, string, error) {
					if failing(strings.Join(spec.Cmd, " ")) {
						return 0, "", boom
					}
					return f.DefaultExec(ctx, id, spec)
				}
				if fail == "capture" && m.capture == "copy-from" {
					f.CopyFromFn = func(context.Context, string, string) (io.ReadCloser, error) { return nil, boom }
				}
				res, err := backup.Run(t.Context(), f, o)
				if fail == "" {
					if err != nil {
						t.Fatalf("Run: %v", err)
					}
					if res.Path == "" || len(res.Volumes) != 2 || res.SizeBytes == 0 {
						t.Errorf("result %+v: want a backup of both volumes", res)
					}
				} else {
					wantErrContains(t, err, boom.Error())
					noBackupLeft(t, o.Dir)
				}
				if res.Mode != m.wantMode {
					t.Errorf("mode %q (%s), want %q", res.Mode, res.ModeReason, m.wantMode)
				}
				if n := phases(rec, "start"); n != 1 {
					t.Errorf("%d restarts, want 1", n)
				}
				n := 0
				for _, id := range f.Ops("start") {
					if !strings.HasPrefix(id, "helper-") {
						n++
					}
				}
				if n != 3 {
					t.Errorf("%d container starts, want 3 (each stopped one, once)", n)
				}
				if len(res.Stopped) != 3 || res.Downtime <= 0 || len(res.ServiceDowntime) != 3 {
					t.Errorf("stopped %v, downtime %s %v: want all three and their downtimes", res.Stopped, res.Downtime, res.ServiceDowntime)
				}
				allRunning(t, f, "db-1", "app-1", "web-1")
				noHelpersLeft(t, f)
			})
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// The pre-copy and the delta sync show progress as volume copies: the
// helper's progress lines, streamed while it runs, become VolumeStart and
// VolumeBytes events for each volume, in both passes.
func TestStagedSyncProgress(t *testing.T) {
	f := stdEngine()
	o, events := stagedOptions(t)
	if _, err := backup.Run(t.Context(), f, o); err != nil {
		t.Fatal(err)
	}
	for _, e := range f.Execs() {
		if strings.Contains(strings.Join(e.Spec.Cmd, " "), " sync ") && e.Spec.Output == nil {
			t.Errorf("sync exec %q without streamed output", e.Spec.Cmd)
		}
	}
	want := map[string]int64{"p_dbdata": int64(len("table one") + len("16\n")), "p_cache": int64(len(cacheFiles[1].Content))}
	// Phases: before the first stop (pre-copy), between it and the first
	// start (delta sync), after (archive).
	phase := 0
	type key struct {
		phase  int
		volume string
	}
	starts, last := map[key]int{}, map[key]int64{}
	precopied := map[string]bool{}
	for _, e := range *events {
		switch {
		case e.Kind == progress.ServiceStop && phase == 0:
			phase = 1
		case e.Kind == progress.ServiceStart && phase == 1:
			phase = 2
		case e.Kind == progress.VolumeStart:
			starts[key{phase, e.Volume}]++
			if phase < 2 && e.Total != 1000 {
				t.Errorf("sync of %s: total %d, want the measured 1000", e.Volume, e.Total)
			}
		case e.Kind == progress.VolumeBytes:
			k := key{phase, e.Volume}
			if starts[k] == 0 {
				t.Errorf("bytes of %s before its start: %+v", e.Volume, e)
			}
			if e.Bytes < last[k] {
				t.Errorf("progress of %s went back: %d after %d", e.Volume, e.Bytes, last[k])
			}
			last[k] = e.Bytes
		case e.Kind == progress.Info && strings.HasPrefix(e.Message, "pre-copied "):
			precopied[e.Volume] = phase == 0
		}
	}
	for vol, n := range want {
		for _, ph := range []int{0, 1} {
			k := key{ph, vol}
			if starts[k] != 1 || last[k] != n {
				t.Errorf("%s in %s: %d starts, last progress %d; want 1 and %d", vol, []string{"pre-copy", "delta sync"}[ph], starts[k], last[k], n)
			}
		}
		if !precopied[vol] {
			t.Errorf("no pre-copied line for %s before the stop", vol)
		}
	}
}

// A sync that ends before its first progress line shows no volume copy.
func TestStagedQuickSyncShowsNoProgress(t *testing.T) {
	f := stdEngine()
	o, events := stagedOptions(t)
	f.ExecFn = func(ctx context.Context, id string, spec engine.ExecSpec) (int, string, error) {
		if req, err := protocol.Decode(spec.Cmd[2:]); err == nil {
			if r, ok := req.(*protocol.Sync); ok {
				r.Progress = 0
				spec.Cmd = protocol.Argv(r)
			}
		}
		return f.DefaultExec(ctx, id, spec)
	}
	if _, err := backup.Run(t.Context(), f, o); err != nil {
		t.Fatal(err)
	}
	stopped := false
	for _, e := range *events {
		stopped = stopped || e.Kind == progress.ServiceStart
		if !stopped && (e.Kind == progress.VolumeStart || e.Kind == progress.VolumeBytes) {
			t.Errorf("volume event %+v for a sync without progress", e)
		}
	}
}
