package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProgressOnTTY: through a pseudo-terminal (script(1)), a long copy
// draws a progress line and redraws it, for the direct path while the
// services are stopped and for the staged pre-copy while they still run;
// without a terminal the same run prints no escape codes.
func TestProgressOnTTY(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("script(1) (util-linux) is needed for the pseudo-terminal")
	}
	for _, c := range []struct {
		name, snapshot string
		line           string // the progress line's start, before the volume name
		before         string // the output it must appear before ("" for anywhere)
	}{
		{"stream-direct", "stream", "\r\x1b[K  archive ", ""},
		{"staged-precopy", "staged", "\r\x1b[K  copying ", "stopping app"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := NewProject(t)
			writeFile(t, filepath.Join(p.Dir, "autobackup.toml"), "[settings]\nsnapshot = \""+c.snapshot+"\"\ncompression_level = 4\n")
			p.Compose(t, "up", "-d", "--wait")
			p.Compose(t, "exec", "-T", "app", "sh", "-c", "dd if=/dev/urandom of=/data/big bs=1M count=400 2>/dev/null")
			r := run(t, p.Dir, "script", "-qec", "docker autobackup run", "/dev/null")
			if r.Code != 0 {
				t.Fatalf("run on a tty: %v", r)
			}
			out := r.Stdout
			if c.before != "" {
				i := strings.Index(out, c.before)
				if i < 0 {
					t.Fatalf("no %q in the output:\n%q", c.before, out)
				}
				out = out[:i]
			}
			// Drawn, and redrawn with other numbers.
			prefix := c.line + p.Volume("data") + ":"
			drawn := map[string]bool{}
			for _, l := range strings.Split(out, "\r\x1b[K")[1:] {
				if l = "\r\x1b[K" + l; strings.HasPrefix(l, prefix) {
					drawn[l] = true
				}
			}
			if len(drawn) < 2 {
				t.Errorf("the progress line %q was drawn %d different ways, want it drawn and redrawn:\n%q", prefix, len(drawn), r.Stdout)
			}
			r = p.Autobackup(t, "run")
			if r.Code != 0 {
				t.Fatalf("run without a tty: %v", r)
			}
			if strings.ContainsAny(r.Stderr, "\r\x1b") {
				t.Errorf("escape codes without a terminal:\n%q", r.Stderr)
			}
		})
	}
}
