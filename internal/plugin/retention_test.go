package plugin

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// commitSized writes a complete backup holding one volume of tarBytes
// uncompressed bytes, started at started, and records it as successful.
func commitSized(t *testing.T, g *globalOptions, started time.Time, tarBytes int64, tag string) string {
	t.Helper()
	dir := filepath.Join(g.ProjectDir, "backups")
	id := archive.NewID(started)
	p, err := archive.Begin(dir, id, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.Path(), "dbdata.tar.zst"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &archive.Manifest{Project: "shop", Mode: archive.ModeStream, Started: started, Finished: started.Add(time.Second), Tag: tag,
		Volumes: []archive.Volume{{Name: "shop_dbdata", Key: "dbdata", Archive: "dbdata.tar.zst", ArchiveBytes: 1, TarBytes: tarBytes, SHA256: strings.Repeat("0", 64)}}}
	if err := p.Commit(m); err != nil {
		t.Fatal(err)
	}
	err = state.Update(stateFile(g), func(f *state.File) error {
		f.RecordBackup(state.Backup{ID: id, Tag: tag, Started: started, Finished: started, Status: state.StatusSuccess, Path: "backups/" + id})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func leftIDs(t *testing.T, g *globalOptions) map[string]bool {
	t.Helper()
	entries, err := archive.ListAll(filepath.Join(g.ProjectDir, "backups"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		out[e.ID] = true
	}
	return out
}

func TestPruneCalendarRules(t *testing.T) {
	ctx := context.Background()
	g := testProject(t, "")
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.Local)
	var all []string
	for i := 0; i < 20; i++ { // one a day at 02:00
		all = append(all, commitSized(t, g, time.Date(2026, 6, 15-i, 2, 0, 0, 0, time.Local), 1000, ""))
	}
	deploy := commitSized(t, g, now.Add(-30*time.Minute), 1000, "pre-upgrade")
	var out bytes.Buffer
	for _, kv := range [][2]string{{"keep_last", "2"}, {"keep_daily", "3"}, {"keep_tagged", "1"}, {"keep_min", "1"}} {
		if err := runConfigSet(ctx, &out, g, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(out.String(), "retention_days (was 7) no longer applies") {
		t.Errorf("config set keep_last does not say retention_days' default went:\n%s", out.String())
	}

	out.Reset()
	if err := runPrune(ctx, &out, g, pruneOptions{dryRun: true}, now, nil); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"Policy: keep_last = 2, keep_daily = 3, keep_tagged = 1, keep_min = 1, prune_guard = 0.5",
		"keep " + all[0], "keep_last: 1 of 2; keep_daily: newest of 2026-06-15 (1 of 3)",
		"keep " + all[2], "keep_daily: newest of 2026-06-13 (3 of 3)",
		"keep " + deploy, `the newest successful backup: never deleted; tagged "pre-upgrade": 1 of keep_tagged = 1`,
		"would delete " + all[19], "and no keep_* rule keeps it",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("dry run lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\nkeep ") + strings.Count(got, "\nwould delete "); n != 21 {
		t.Errorf("dry run shows %d backups, want all 21:\n%s", n, got)
	}

	out.Reset()
	if err := runPrune(ctx, &out, g, pruneOptions{}, now, nil); err != nil {
		t.Fatal(err)
	}
	left := leftIDs(t, g)
	if len(left) != 4 || !left[deploy] || !left[all[0]] || !left[all[1]] || !left[all[2]] {
		t.Errorf("left %v, want the deploy and the 3 newest scheduled backups\n%s", left, out.String())
	}
	f, err := state.Load(stateFile(g))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Prunes) != 1 || !strings.Contains(f.Prunes[0].Reason, "keep_last = 2") {
		t.Errorf("prune record: %+v", f.Prunes)
	}
}

func TestPruneGuard(t *testing.T) {
	ctx := context.Background()
	g := testProject(t, "")
	now := time.Now()
	day := 24 * time.Hour
	var out bytes.Buffer
	if err := runConfigSet(ctx, &out, g, "keep_min", "1"); err != nil {
		t.Fatal(err)
	}
	old := commitSized(t, g, now.Add(-30*day), 1000, "")
	commitSized(t, g, now.Add(-2*day), 1000, "")
	suspect := commitSized(t, g, now.Add(-time.Hour), 400, "")

	err := runPrune(ctx, &out, g, pruneOptions{}, now, nil)
	if err == nil || !strings.Contains(err.Error(), "pruning stopped: the newest successful backup "+suspect+" holds 400 B uncompressed, under prune_guard = 0.5") {
		t.Fatalf("prune with a suspicious newest backup: err = %v\n%s", err, out.String())
	}
	if !leftIDs(t, g)[old] {
		t.Fatalf("pruning stopped, yet %s was deleted", old)
	}

	env, err := loadProject(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	lineService(&stderr, time.Now()).PruneAfterRun(context.Background(), env)
	if !strings.Contains(stderr.String(), "WARNING pruning stopped") || !leftIDs(t, g)[old] {
		t.Errorf("after a run: %s\n(old backup left: %v)", stderr.String(), leftIDs(t, g)[old])
	}
	st := buildStatus(env, 5, now)
	if !strings.Contains(st.PruneStopped, suspect) || !strings.Contains(st.Next, "Pruning is stopped") {
		t.Errorf("status: prune_stopped %q, next %q", st.PruneStopped, st.Next)
	}
	var text bytes.Buffer
	if err := printStatus(&text, st); err != nil || !strings.Contains(text.String(), "Pruning:      STOPPED: the newest successful backup "+suspect) {
		t.Errorf("status text:\n%s", text.String())
	}

	out.Reset()
	if err := runPrune(ctx, &out, g, pruneOptions{force: true}, now, nil); err != nil {
		t.Fatal(err)
	}
	if leftIDs(t, g)[old] {
		t.Errorf("prune --force kept %s:\n%s", old, out.String())
	}

	// prune_guard 0 turns it off for good.
	commitSized(t, g, now.Add(-time.Minute), 10, "")
	if err := runConfigSet(ctx, &out, g, "prune_guard", "0"); err != nil {
		t.Fatal(err)
	}
	env, _ = loadProject(ctx, g)
	if st := buildStatus(env, 5, now); st.PruneStopped != "" {
		t.Errorf("prune_guard 0: status says %q", st.PruneStopped)
	}
}

func TestConfigSetRefusesRetentionWithoutRules(t *testing.T) {
	ctx := context.Background()
	g := testProject(t, "")
	var out bytes.Buffer
	err := runConfigSet(ctx, &out, g, "retention_days", "0")
	if err == nil || !strings.Contains(err.Error(), "no rule would ever let a backup go") {
		t.Fatalf("retention_days 0 alone: err = %v", err)
	}
	if code, _ := classify(err); code != ExitUsage {
		t.Errorf("exit code %d, want %d", code, ExitUsage)
	}
	if _, err := os.Stat(stateFile(g)); err == nil {
		f, _ := state.Load(stateFile(g))
		if f.Settings.RetentionDays != nil {
			t.Errorf("the refused value was written: %d", *f.Settings.RetentionDays)
		}
	}
	// With a rule it is fine; unsetting the rule afterwards is refused.
	if err := runConfigSet(ctx, &out, g, "keep_daily", "7"); err != nil {
		t.Fatal(err)
	}
	if err := runConfigSet(ctx, &out, g, "retention_days", "0"); err != nil {
		t.Fatal(err)
	}
	if err := runConfigUnset(ctx, &out, g, "keep_daily"); err == nil || !strings.Contains(err.Error(), "no rule would ever") {
		t.Errorf("unset keep_daily with retention_days 0: err = %v", err)
	}
}

// A backup that verify found corrupt is no keeper: it does not count for
// keep_last, and an older sound backup is kept in its place.
func TestVerifyFailureIsRecordedAndNotAKeeper(t *testing.T) {
	ctx := context.Background()
	g := testProject(t, "")
	now := time.Now()
	day := 24 * time.Hour
	sound := commitSized(t, g, now.Add(-3*day), 1000, "")
	corrupt := commitSized(t, g, now.Add(-2*day), 1000, "") // its checksum is zeros: verify fails
	var out bytes.Buffer
	if err := runConfigSet(ctx, &out, g, "keep_last", "1"); err != nil {
		t.Fatal(err)
	}
	if err := runVerify(ctx, &out, g, corrupt, verifyOptions{}); err == nil {
		t.Fatalf("verify of a bad checksum passed:\n%s", out.String())
	}
	f, err := state.Load(stateFile(g))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := f.FindBackup(corrupt); b == nil || !strings.Contains(b.VerifyError, "checksum mismatch") {
		t.Fatalf("verify failure not recorded: %+v", b)
	}
	out.Reset()
	if err := runPrune(ctx, &out, g, pruneOptions{dryRun: true}, now, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"keep " + sound, "would delete " + corrupt, "not verified (docker autobackup verify found: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, out.String())
		}
	}
}
