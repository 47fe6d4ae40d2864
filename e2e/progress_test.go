package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProgressOnTTY: through a pseudo-terminal (script(1)), the direct
// path draws a progress line and redraws it; without a terminal the same
// run prints no escape codes.
func TestProgressOnTTY(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("script(1) (util-linux) is needed for the pseudo-terminal")
	}
	p := NewProject(t)
	writeFile(t, filepath.Join(p.Dir, "autobackup.toml"), "[settings]\nsnapshot = \"stream\"\ncompression_level = 4\n")
	p.Compose(t, "up", "-d", "--wait")
	p.Compose(t, "exec", "-T", "app", "sh", "-c", "dd if=/dev/urandom of=/data/big bs=1M count=400 2>/dev/null")
	r := run(t, p.Dir, "script", "-qec", "docker autobackup run", "/dev/null")
	if r.Code != 0 {
		t.Fatalf("run on a tty: %v", r)
	}
	if n := strings.Count(r.Stdout, "\r\x1b[K  archive "+p.Volume("data")+":"); n < 2 {
		t.Errorf("the progress line was drawn %d times, want it drawn and redrawn:\n%q", n, r.Stdout)
	}
	r = p.Autobackup(t, "run")
	if r.Code != 0 {
		t.Fatalf("run without a tty: %v", r)
	}
	if strings.ContainsAny(r.Stderr, "\r\x1b") {
		t.Errorf("escape codes without a terminal:\n%q", r.Stderr)
	}
}
