package e2e

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
)

var idPattern = regexp.MustCompile(`^\d{8}-\d{6}-[0-9a-f]{4}$`)

// mustRun runs `docker autobackup run args...` and returns the backup ID,
// failing the test unless it exits 0 and prints exactly one ID on stdout.
func mustRun(t *testing.T, p *Project, args ...string) string {
	t.Helper()
	r := p.Autobackup(t, append([]string{"run"}, args...)...)
	if r.Code != 0 {
		t.Fatalf("docker autobackup run: %v", r)
	}
	id := strings.TrimSpace(r.Stdout)
	if !idPattern.MatchString(id) {
		t.Fatalf("stdout is %q, want only a backup ID", r.Stdout)
	}
	return id
}

// stateFile reads the project's history (autobackup.history.toml) loosely.
type stateFile struct {
	State struct {
		LastBackupID     string `toml:"last_backup_id"`
		LastBackupStatus string `toml:"last_backup_status"`
	} `toml:"state"`
	Backups []struct {
		ID              string   `toml:"id"`
		Status          string   `toml:"status"`
		Volumes         []string `toml:"volumes"`
		Path            string   `toml:"path"`
		Error           string   `toml:"error"`
		DowntimeSeconds float64  `toml:"downtime_seconds"`
	} `toml:"backups"`
	Restores []struct {
		BackupID string   `toml:"backup_id"`
		Status   string   `toml:"status"`
		Volumes  []string `toml:"volumes"`
	} `toml:"restores"`
}

func readState(t *testing.T, p *Project) stateFile {
	t.Helper()
	var s stateFile
	if _, err := toml.DecodeFile(filepath.Join(p.Dir, "autobackup.history.toml"), &s); err != nil {
		t.Fatalf("read autobackup.history.toml: %v", err)
	}
	return s
}

// archiveFiles returns name → content of the regular files in the
// archive of volume in backup id.
func archiveFiles(t *testing.T, p *Project, id, volume string) map[string]string {
	t.Helper()
	m, path, err := archive.Open(filepath.Join(p.Dir, "backups"), p.Name, id)
	if err != nil {
		t.Fatalf("open backup %s: %v", id, err)
	}
	i := slices.IndexFunc(m.Volumes, func(v archive.Volume) bool { return v.Name == volume })
	if i < 0 {
		t.Fatalf("backup %s has no volume %s", id, volume)
	}
	rc, err := archive.OpenVolume(path, m.Volumes[i])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read archive: %v", err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			out[strings.TrimPrefix(h.Name, "./")] = string(b)
		}
	}
}

func wantAllUp(t *testing.T, p *Project, services ...string) {
	t.Helper()
	for _, s := range services {
		if st, health := p.ContainerState(t, s); st != "running" || (health != "" && health != "healthy") {
			t.Errorf("service %s is %s/%s after the run, want running (and healthy)", s, st, health)
		}
	}
}

func TestRunChain(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	p.Compose(t, "exec", "-T", "db", "sh", "-c", "echo 'hello backup' > /data/sub/file.txt")

	// The dry run changes nothing and shows the plan.
	ev := p.StartEvents(t)
	dry := p.Autobackup(t, "run", "--dry-run")
	if dry.Code != 0 {
		t.Fatalf("dry run: %v", dry)
	}
	for _, want := range []string{p.Volume("dbdata"), "bind", "tmpfs", "web → app → db", "db → app → web"} {
		if !strings.Contains(dry.Stdout, want) {
			t.Errorf("dry-run plan lacks %q:\n%s", want, dry.Stdout)
		}
	}
	if got := Lifecycle(ev.Stop()); len(got) != 0 {
		t.Fatalf("dry run touched containers: %v", got)
	}

	ev = p.StartEvents(t)
	id := mustRun(t, p, "--tag", "nightly")
	evs := ev.Stop()

	if got, want := Order(evs, "stop"), []string{"web", "app", "db"}; !slices.Equal(got, want) {
		t.Errorf("stop order %v, want %v", got, want)
	}
	if got, want := Order(evs, "start"), []string{"db", "app", "web"}; !slices.Equal(got, want) {
		t.Errorf("start order %v, want %v", got, want)
	}
	// service_healthy: app starts only after db is healthy, web after app.
	if !Before(evs, "db", "health_status: healthy", "app", "start") {
		t.Errorf("app started before db was healthy: %v", Lifecycle(evs))
	}
	if !Before(evs, "app", "health_status: healthy", "web", "start") {
		t.Errorf("web started before app was healthy: %v", Lifecycle(evs))
	}
	wantAllUp(t, p, "db", "app", "web")

	files := archiveFiles(t, p, id, p.Volume("dbdata"))
	if got := files["sub/file.txt"]; got != "hello backup\n" {
		t.Errorf("archive sub/file.txt = %q, want the data written before the run", got)
	}
	if got := files["seed"]; got != "seed\n" {
		t.Errorf("archive seed = %q", got)
	}

	s := readState(t, p)
	if s.State.LastBackupID != id || s.State.LastBackupStatus != "success" {
		t.Errorf("[state] = %+v, want last backup %s success", s.State, id)
	}
	if n := len(s.Backups); n != 1 || s.Backups[0].Status != "success" || s.Backups[0].Path != "backups/"+id || s.Backups[0].DowntimeSeconds <= 0 {
		t.Errorf("[[backups]] = %+v", s.Backups)
	}
	for _, name := range []string{"backups", "backups/" + id, "backups/" + id + "/manifest.json", "autobackup.history.toml"} {
		fi, err := os.Stat(filepath.Join(p.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %v, want %v", name, got, want)
		}
	}

	// status --format json tells the same story.
	st := p.Autobackup(t, "status", "--format", "json")
	if st.Code != 0 {
		t.Fatalf("status: %v", st)
	}
	var js struct {
		Project          string `json:"project"`
		Enabled          bool   `json:"enabled"`
		Schedule         string `json:"schedule"`
		RetentionDays    int    `json:"retention_days"`
		Directory        string `json:"directory"`
		LastBackupID     string `json:"last_backup_id"`
		LastBackupStatus string `json:"last_backup_status"`
		Recent           []struct {
			ID        string `json:"id"`
			Tag       string `json:"tag"`
			SizeBytes int64  `json:"size_bytes"`
		} `json:"recent"`
		Next string `json:"next_step"`
	}
	if err := json.Unmarshal([]byte(st.Stdout), &js); err != nil {
		t.Fatalf("status json: %v\n%s", err, st.Stdout)
	}
	if js.Project != p.Name || js.Enabled || js.Schedule != "0 2 * * *" || js.RetentionDays != 7 || js.Directory != "./backups" ||
		js.LastBackupID != id || js.LastBackupStatus != "success" || len(js.Recent) != 1 || js.Recent[0].Tag != "nightly" || js.Recent[0].SizeBytes <= 0 || js.Next == "" {
		t.Errorf("status json = %+v", js)
	}
	text := p.Autobackup(t, "status")
	if text.Code != 0 || !strings.Contains(text.Stdout, id) || !strings.Contains(text.Stdout, "docker autobackup") {
		t.Errorf("status text: %v", text)
	}
}

func TestRunDiamond(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	ev := p.StartEvents(t)
	id := mustRun(t, p)
	evs := ev.Stop()
	for _, pair := range [][2]string{{"top", "left"}, {"top", "right"}, {"left", "base"}, {"right", "base"}} {
		if !Before(evs, pair[0], "stop", pair[1], "stop") {
			t.Errorf("%s did not stop before %s: %v", pair[0], pair[1], Lifecycle(evs))
		}
		if !Before(evs, pair[1], "start", pair[0], "start") {
			t.Errorf("%s did not start before %s: %v", pair[1], pair[0], Lifecycle(evs))
		}
	}
	wantAllUp(t, p, "base", "left", "right", "top")
	m, _, err := archive.Open(filepath.Join(p.Dir, "backups"), p.Name, id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range m.Volumes {
		got = append(got, v.Name)
	}
	if want := []string{p.Volume("basedata"), p.Volume("rightdata")}; !slices.Equal(got, want) {
		t.Errorf("volumes %v, want %v", got, want)
	}
}

func TestRunLeavesStoppedAlone(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	p.Compose(t, "stop", "worker")
	oneoff := strings.TrimSpace(p.Compose(t, "run", "-d", "--no-deps", "api", "sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"))
	ev := p.StartEvents(t)
	mustRun(t, p)
	evs := ev.Stop()
	for _, e := range evs {
		if e.Type == "container" && (e.Service == "worker" && (e.Action == "start" || e.Action == "stop")) {
			t.Errorf("worker (stopped before the run) got %q", e.Action)
		}
		if e.Type == "container" && strings.HasPrefix(oneoff, e.ID[:12]) && (e.Action == "stop" || e.Action == "start" || e.Action == "kill") {
			t.Errorf("one-off container got %q", e.Action)
		}
	}
	if st, _ := p.ContainerState(t, "worker"); st != "exited" {
		t.Errorf("worker is %s after the run, want exited (as before)", st)
	}
	r := Docker(t, "inspect", "--format", "{{.State.Status}}", oneoff)
	if strings.TrimSpace(r.Stdout) != "running" {
		t.Errorf("one-off container is %q, want running", r.Stdout)
	}
	Docker(t, "rm", "-f", oneoff)
	wantAllUp(t, p, "db", "api")
}

func TestRunSnapshotFailureRestarts(t *testing.T) {
	p := NewProject(t)
	// Through the API: the direct path's helper holds the volume from
	// before the stop, so the engine would refuse to remove it.
	useDirect(t, false)
	ext := p.Name + "-ext"
	if r := Docker(t, "volume", "create", ext); r.Code != 0 {
		t.Fatalf("create external volume: %v", r)
	}
	t.Cleanup(func() { Docker(t, "volume", "rm", "-f", ext) })
	if err := os.WriteFile(filepath.Join(p.Dir, ".env"), []byte("EXT_VOLUME="+ext+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Compose(t, "up", "-d", "--wait", "db")

	// Remove the volume while db is stopping (it takes ~3 s).
	ev := p.StartEvents(t)
	done := make(chan Result, 1)
	go func() { done <- p.Autobackup(t, "run") }()
	// The partial backup directory appears right before the stop phase.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m, _ := filepath.Glob(filepath.Join(p.Dir, "backups", ".partial-*")); len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run never reached the stop phase")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // db traps TERM for 3 s: the stop is under way
	if r := Docker(t, "volume", "rm", ext); r.Code != 0 {
		t.Fatalf("remove volume behind the backup's back: %v", r)
	}
	r := <-done
	evs := ev.Stop()
	if r.Code != 1 {
		t.Fatalf("run exit %d, want 1 (backup failed, services restarted): %v", r.Code, r)
	}
	if strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("a failed run printed %q on stdout", r.Stdout)
	}
	if !strings.Contains(r.Stderr, ext) {
		t.Errorf("error does not name the volume %s: %s", ext, r.Stderr)
	}
	if !Before(evs, "db", "stop", "db", "start") {
		t.Errorf("db was not stopped and restarted: %v", Lifecycle(evs))
	}
	wantAllUp(t, p, "db")
	entries, err := archive.List(filepath.Join(p.Dir, "backups"), p.Name)
	if err != nil || len(entries) != 0 {
		t.Errorf("a failed run left backups %v (%v)", entries, err)
	}
	if left, _ := filepath.Glob(filepath.Join(p.Dir, "backups", ".partial-*")); len(left) > 0 {
		t.Errorf("partial backup left: %v", left)
	}
	s := readState(t, p)
	if len(s.Backups) != 1 || s.Backups[0].Status != "failed" || !strings.Contains(s.Backups[0].Error, ext) || s.State.LastBackupStatus != "failed" {
		t.Errorf("state = %+v", s)
	}
	if r := Docker(t, "volume", "inspect", ext); r.Code == 0 {
		t.Errorf("the removed volume %s exists again: the backup must not mount (and so re-create) it", ext)
	}
}
