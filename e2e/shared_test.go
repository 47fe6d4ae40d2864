package e2e

import (
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
)

// userSettings is an autobackup.toml as a person writes it: comments,
// blank lines, an order of their own.
const userSettings = `# Both shops back up into the server's one backup folder.
[settings]
# keep them a day, but always one
retention_days = 1   # see the runbook

keep_min = 1
directory = "%s"
snapshot = "stream"
`

// listIDs returns the IDs `list --format json` shows.
func listIDs(t *testing.T, p *Project) []string {
	t.Helper()
	r := p.Autobackup(t, "list", "--format", "json")
	var list []struct {
		ID string `json:"id"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &list) != nil {
		t.Fatalf("list: %v", r)
	}
	var ids []string
	for _, e := range list {
		ids = append(ids, e.ID)
	}
	return ids
}

func volumeFile(t *testing.T, p *Project) string {
	t.Helper()
	return strings.TrimSpace(p.Compose(t, "exec", "-T", "app", "cat", "/data/who"))
}

// ageBackup moves a backup's start time days into the past, as retention
// judges it (by the manifest, not mtimes).
func ageManifest(t *testing.T, dir, id string, days int) {
	t.Helper()
	path := filepath.Join(dir, id, archive.ManifestName)
	m, err := archive.ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	m.Started = m.Started.Add(-time.Duration(days) * 24 * time.Hour)
	m.Finished = m.Finished.Add(-time.Duration(days) * 24 * time.Hour)
	data, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSharedFolder: two projects backing up into one absolute folder
// never see, prune or restore each other's backups, and run at the same
// time; --from-project brings one's data into the other on purpose.
func TestSharedFolder(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "srv-backups")
	a, b := NewProject(t), NewProject(t)
	for _, p := range []*Project{a, b} {
		writeFile(t, filepath.Join(p.Dir, "autobackup.toml"), strings.Replace(userSettings, "%s", shared, 1))
		p.Compose(t, "up", "-d", "--wait")
		p.Compose(t, "exec", "-T", "app", "sh", "-c", "echo "+p.Name+" > /data/who")
	}

	// Both projects back up at the same time, twice; a config change lands
	// in the middle of A's runs.
	ids := map[*Project][]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 2 {
		for _, p := range []*Project{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := p.Autobackup(t, "run", "--lock-timeout", "2m")
				if r.Code != 0 {
					t.Errorf("concurrent run of %s: %v", p.Name, r)
					return
				}
				mu.Lock()
				ids[p] = append(ids[p], strings.TrimSpace(r.Stdout))
				mu.Unlock()
			}()
		}
		if r := a.Autobackup(t, "config", "set", "stop_timeout", "20s"); r.Code != 0 {
			t.Errorf("config set during a backup: %v", r)
		}
		wg.Wait()
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, p := range []*Project{a, b} {
		got := listIDs(t, p)
		if len(got) != 2 || !sameSet(got, ids[p]) {
			t.Errorf("list in %s = %v, want its own %v", p.Name, got, ids[p])
		}
	}
	// What the user wrote survives the runs and the config change, and
	// the change is there.
	data, _ := os.ReadFile(filepath.Join(a.Dir, "autobackup.toml"))
	for _, want := range []string{"# Both shops back up", "# keep them a day, but always one", "retention_days = 1   # see the runbook", "\nkeep_min = 1\n", `stop_timeout = "20s"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("autobackup.toml lost %q:\n%s", want, data)
		}
	}
	if s := readState(t, a); len(s.Backups) != 2 {
		t.Errorf("A's history records %d runs, want 2", len(s.Backups))
	}

	// Retention in A counts only A's backups: with everything ten days
	// old, A keeps its newest and deletes its other; B's stay.
	all, _ := archive.ListAll(shared)
	for _, e := range all {
		ageManifest(t, shared, e.ID, 10)
	}
	if r := a.Autobackup(t, "prune"); r.Code != 0 {
		t.Fatalf("prune in A: %v", r)
	}
	if got := listIDs(t, a); len(got) != 1 {
		t.Errorf("A after prune: %v, want one backup", got)
	}
	if got := listIDs(t, b); !sameSet(got, ids[b]) {
		t.Errorf("B after A's prune: %v, want %v untouched", got, ids[b])
	}
	if r := a.Autobackup(t, "clean"); r.Code != 0 {
		t.Errorf("clean in A: %v", r)
	}
	if got := listIDs(t, b); !sameSet(got, ids[b]) {
		t.Errorf("B after A's clean: %v, want %v untouched", got, ids[b])
	}

	// restore latest in A restores A's data into A, and leaves B alone.
	a.Compose(t, "exec", "-T", "app", "sh", "-c", "echo changed > /data/who")
	b.Compose(t, "exec", "-T", "app", "sh", "-c", "echo b-now > /data/who")
	evB := b.StartEvents(t)
	if r := a.Autobackup(t, "restore", "latest", "--yes"); r.Code != 0 {
		t.Fatalf("restore latest in A: %v", r)
	}
	if got := volumeFile(t, a); got != a.Name {
		t.Errorf("A's data after restore latest = %q, want %q", got, a.Name)
	}
	if got := volumeFile(t, b); got != "b-now" {
		t.Errorf("B's data after A's restore = %q, want untouched", got)
	}

	// B's backup by ID in A: refused, naming B, before anything stops.
	evA := a.StartEvents(t)
	r := a.Autobackup(t, "restore", ids[b][0], "--yes")
	if r.Code != 2 || !strings.Contains(r.Stderr, b.Name) || !strings.Contains(r.Stderr, "--from-project") {
		t.Errorf("restore of B's backup in A: want exit 2 naming %s and --from-project: %v", b.Name, r)
	}
	if stops := Lifecycle(evA.Stop(), "stop", "kill"); len(stops) > 0 {
		t.Errorf("a refused restore stopped %v", stops)
	}
	for _, e := range evB.Stop() {
		if e.Type == "container" && (e.Action == "stop" || e.Action == "kill") {
			t.Errorf("B's container was touched by A's restores: %s %s", e.Container, e.Action)
		}
	}

	// On purpose: B's data into A, mapped by compose key.
	r = a.Autobackup(t, "restore", "--from-project", b.Name, ids[b][0], "--yes")
	if r.Code != 0 {
		t.Fatalf("restore --from-project: %v", r)
	}
	if !strings.Contains(r.Stderr, a.Volume("data")) || !strings.Contains(r.Stderr, "<- "+b.Volume("data")) {
		t.Errorf("the plan does not show the mapping %s <- %s:\n%s", a.Volume("data"), b.Volume("data"), r.Stderr)
	}
	if got := volumeFile(t, a); got != b.Name {
		t.Errorf("A's data after --from-project = %q, want B's %q", got, b.Name)
	}
	if got := volumeFile(t, b); got != "b-now" {
		t.Errorf("B's data after --from-project into A = %q, want untouched", got)
	}
}

// TestRestoreRefusesOutsideUsers: a restore never writes into a volume a
// running container outside the project uses.
func TestRestoreRefusesOutsideUsers(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	id := mustRun(t, p)
	name := "outsider-" + p.Name
	if r := Docker(t, "run", "-d", "--name", name, "-v", p.Volume("data")+":/d", testImage, "sleep", "3600"); r.Code != 0 {
		t.Fatalf("start outsider: %v", r)
	}
	t.Cleanup(func() { runCmd(context.Background(), "", nil, "docker", "rm", "-f", name) })
	r := p.Autobackup(t, "restore", id, "--yes")
	if r.Code == 0 || !strings.Contains(r.Stderr, name) || !strings.Contains(r.Stderr, "--stop-others") {
		t.Errorf("restore with an outside user: want a refusal naming %s: %v", name, r)
	}
	r = p.Autobackup(t, "restore", id, "--yes", "--stop-others")
	if r.Code != 0 {
		t.Fatalf("restore --stop-others: %v", r)
	}
	if out := Docker(t, "inspect", "-f", "{{.State.Running}}", name); strings.TrimSpace(out.Stdout) != "true" {
		t.Errorf("outsider not running again after --stop-others: %v", out)
	}
}

// TestDynamicBuild: a plugin built the way `go build` builds it where gcc
// is installed (cgo on, dynamically linked) backs up staged and restores.
func TestDynamicBuild(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gcc is needed to build the dynamically linked plugin")
		}
		t.Skip("no gcc: cannot build a dynamically linked plugin")
	}
	cfg := t.TempDir()
	plugins := filepath.Join(cfg, "cli-plugins")
	os.MkdirAll(plugins, 0o755)
	bin := filepath.Join(plugins, "docker-autobackup")
	build := exec.Command("go", "build", "-o", bin, "./cmd/docker-autobackup")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	dynamic := false
	for _, p := range f.Progs {
		dynamic = dynamic || p.Type == elf.PT_INTERP
	}
	f.Close()
	if !dynamic {
		t.Fatal("the cgo build is static; this test needs a dynamically linked plugin")
	}
	if err := copyFile(filepath.Join(dockerConfig, "cli-plugins", "docker-compose"), filepath.Join(plugins, "docker-compose"), 0o755); err != nil {
		t.Fatal(err)
	}

	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	p.Compose(t, "exec", "-T", "app", "sh", "-c", "echo original > /data/who")
	env := []string{"DOCKER_CONFIG=" + cfg}
	dyn := func(args ...string) Result {
		t.Helper()
		ctx := t.Context()
		return runCmd(ctx, p.Dir, env, "docker", append([]string{"autobackup"}, args...)...)
	}
	r := dyn("config", "set", "snapshot", "staged")
	if r.Code != 0 {
		t.Fatalf("config set: %v", r)
	}
	r = dyn("run")
	if r.Code != 0 {
		t.Fatalf("run with the dynamic build: %v", r)
	}
	if strings.Contains(r.Stderr, "WARNING") || strings.Contains(r.Stderr, "not possible") {
		t.Errorf("the dynamic build fell back:\n%s", r.Stderr)
	}
	id := strings.TrimSpace(r.Stdout)
	m, _, err := archive.Open(filepath.Join(p.Dir, "backups"), p.Name, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Mode != archive.ModeStaged {
		t.Errorf("mode %q, want staged", m.Mode)
	}
	p.Compose(t, "exec", "-T", "app", "sh", "-c", "echo changed > /data/who")
	if r := dyn("restore", id, "--yes"); r.Code != 0 {
		t.Fatalf("restore with the dynamic build: %v", r)
	}
	if got := volumeFile(t, p); got != "original" {
		t.Errorf("after restore: %q, want original", got)
	}
}

// TestStagingCollected: the staging copy of a volume that `compose down
// -v` removed is collected by the next clean of any project.
func TestStagingCollected(t *testing.T) {
	p, other := NewProject(t), NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	mustRun(t, p, "--quiet")
	staging := p.Volume("data") + "-autobackup-staging"
	if r := Docker(t, "volume", "inspect", staging); r.Code != 0 {
		t.Fatalf("no staging volume after a staged run: %v", r)
	}
	if r := p.Autobackup(t, "status"); !strings.Contains(r.Stdout, "Staging:") {
		t.Errorf("status does not show the staging copies' disk:\n%s", r.Stdout)
	}
	p.Compose(t, "down", "-v")
	r := other.Autobackup(t, "clean")
	if r.Code != 0 {
		t.Fatalf("clean: %v", r)
	}
	if !strings.Contains(r.Stderr, staging) {
		t.Errorf("clean did not say it removed %s:\n%s", staging, r.Stderr)
	}
	if r := Docker(t, "volume", "inspect", staging); r.Code == 0 {
		t.Errorf("staging volume %s outlived its volume", staging)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestRestoreBackupFirst: --backup-first keeps what a restore throws away
// in a backup of its own, whose ID is printed, so the restore can be
// undone.
func TestRestoreBackupFirst(t *testing.T) {
	p := NewProject(t)
	writeFile(t, filepath.Join(p.Dir, "autobackup.toml"), "[settings]\nsnapshot = \"stream\"\n")
	p.Compose(t, "up", "-d", "--wait")
	p.Compose(t, "exec", "-T", "app", "sh", "-c", "echo old > /data/who")
	id := mustRun(t, p)
	p.Compose(t, "exec", "-T", "app", "sh", "-c", "echo orders-placed-since > /data/who")
	r := p.Autobackup(t, "restore", id, "--yes", "--backup-first")
	if r.Code != 0 {
		t.Fatalf("restore --backup-first: %v", r)
	}
	if got := volumeFile(t, p); got != "old" {
		t.Errorf("after the restore: %q, want old", got)
	}
	m := regexp.MustCompile(`docker autobackup restore (\d{8}-\d{6}-[0-9a-f]{4}) --yes`).FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("the restore did not print how to undo it:\n%s", r.Stderr)
	}
	if r := p.Autobackup(t, "restore", "--tag", "pre-restore", "--yes"); r.Code != 0 || !strings.Contains(r.Stderr, m[1]) {
		t.Fatalf("undo with --tag pre-restore (%s): %v", m[1], r)
	}
	if got := volumeFile(t, p); got != "orders-placed-since" {
		t.Errorf("after undoing the restore: %q, want the data written before it", got)
	}
}
