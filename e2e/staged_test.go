package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
)

// TestRunStaged backs up a volume that is being written to until the
// moment its service stops: the staged mode copies while it runs, then
// only the changes while it is stopped, and the archive must hold exactly
// what the volume held at the stop.
func TestRunStaged(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	dry := p.Autobackup(t, "run", "--dry-run")
	if !strings.Contains(dry.Stdout, "snapshot mode: staged") {
		t.Fatalf("dry run does not announce the staged mode:\n%s", dry.Stdout)
	}
	for round := 1; round <= 2; round++ { // the second round is incremental
		id := mustRun(t, p)
		m, _, err := archive.Open(filepath.Join(p.Dir, "backups"), p.Name, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Mode != archive.ModeStaged {
			t.Fatalf("round %d: mode %q, want staged", round, m.Mode)
		}
		files := archiveFiles(t, p, id, p.Volume("data"))
		// The writer was stopped during the run and restarted after it;
		// what it wrote last before the stop is in the archive, and
		// counter and same-size agree with each other.
		counter := strings.TrimSpace(strings.TrimPrefix(files["counter"], "tick "))
		same := strings.TrimLeft(files["same-size"], "0")
		if counter == "" || counter != same {
			t.Errorf("round %d: counter %q and same-size %q disagree: the delta sync missed a change", round, files["counter"], files["same-size"])
		}
		if n := countPrefix(files, "many/f"); n != 300 {
			t.Errorf("round %d: %d files under many/, want 300", round, n)
		}
	}
	r := Docker(t, "volume", "inspect", "--format", `{{index .Labels "io.docker-autobackup.staging"}} {{index .Labels "io.docker-autobackup.project"}}`, p.Volume("data")+"-autobackup-staging")
	if got := strings.TrimSpace(r.Stdout); got != "true "+p.Name {
		t.Fatalf("staging volume labels %q (%v)", got, r)
	}
	wantAllUp(t, p, "writer", "reader")
	// clean removes the staging volume (and nothing else).
	c := p.Autobackup(t, "clean")
	if c.Code != 0 || !strings.Contains(c.Stderr, "staging volume") {
		t.Fatalf("clean: %v", c)
	}
	if r := Docker(t, "volume", "inspect", p.Volume("data")+"-autobackup-staging"); r.Code == 0 {
		t.Error("clean left the staging volume")
	}
	if r := Docker(t, "volume", "inspect", p.Volume("data")); r.Code != 0 {
		t.Error("clean removed the project's own volume")
	}
}

func countPrefix(files map[string]string, prefix string) int {
	n := 0
	for name := range files {
		if strings.HasPrefix(name, prefix) {
			n++
		}
	}
	return n
}
