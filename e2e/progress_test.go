package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/s3test"
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

// TestProgressEveryPhase: on a terminal, push (upload), verify (local and
// remote) and restore (verify, then the helper unpacking next to the data)
// each draw a live line per volume, and a restore says restoring/restored,
// not copying/copied; without a terminal the same commands print no
// escape codes.
func TestProgressEveryPhase(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("script(1) (util-linux) is needed for the pseudo-terminal")
	}
	srv := s3test.Start(t, "bkt")
	t.Setenv("AB_S3_ENDPOINT", srv.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
	p := NewProject(t)
	writeFile(t, filepath.Join(p.Dir, "autobackup.toml"), "[settings]\nsnapshot = \"stream\"\ncompression_level = 1\n")
	p.Compose(t, "up", "-d", "--wait")
	// Data that does not compress and takes a few seconds to move here.
	p.Compose(t, "exec", "-T", "app", "sh", "-c", "dd if=/dev/urandom of=/data/big bs=1M count=600 2>/dev/null")
	vol := p.Volume("data")
	tty := func(cmd string) string {
		t.Helper()
		r := run(t, p.Dir, "script", "-qec", cmd, "/dev/null")
		if r.Code != 0 {
			t.Fatalf("%s on a tty: %v", cmd, r)
		}
		return r.Stdout
	}
	live := func(out, what string) {
		t.Helper()
		if !strings.Contains(out, "\r\x1b[K  "+what+" "+vol+":") {
			t.Errorf("no live line %q:\n%q", what+" "+vol, out)
		}
	}

	// The run uploads too: its upload has a live line.
	live(tty("docker autobackup run"), "uploading")
	live(tty("docker autobackup verify"), "verifying")
	live(tty("docker autobackup verify --remote"), "verifying")
	out := tty("docker autobackup restore --yes --backup-first=false")
	live(out, "verifying")
	live(out, "restoring")
	if !strings.Contains(out, "restoring "+vol+"\r\n") || !strings.Contains(out, "restored "+vol+": ") || strings.Contains(out, "copied") || strings.Contains(out, "copying") {
		t.Errorf("restore does not say restoring/restored (or says copying):\n%q", out)
	}

	for _, args := range [][]string{{"push"}, {"verify"}, {"verify", "--remote"}, {"restore", "--yes"}} {
		r := p.Autobackup(t, args...)
		if r.Code != 0 {
			t.Fatalf("%v without a tty: %v", args, r)
		}
		if strings.ContainsAny(r.Stdout+r.Stderr, "\r\x1b") {
			t.Errorf("%v: escape codes without a terminal:\n%q", args, r.Stderr)
		}
	}
	wantAllUp(t, p, "app")
}

// TestProgressJSON: with --progress json, what a run reports on stderr is
// one JSON object per line, each an event with its kind; stdout is still
// just the backup's ID. A --progress that does not exist is a usage error.
func TestProgressJSON(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	p.Compose(t, "exec", "-T", "app", "sh", "-c", "dd if=/dev/urandom of=/data/blob bs=1M count=20 2>/dev/null")
	r := p.Autobackup(t, "run", "--progress", "json")
	if r.Code != 0 {
		t.Fatalf("run --progress json: %v", r)
	}
	kinds := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
		var ev struct {
			Kind, Volume, Service, Message string
			Time                           time.Time
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("stderr line %q is not JSON: %v\n%s", l, err, r.Stderr)
		}
		if ev.Kind == "" || ev.Time.IsZero() {
			t.Errorf("event without kind or time: %q", l)
		}
		kinds[ev.Kind]++
	}
	for _, k := range []string{"service-stop", "service-healthy", "volume-start", "volume-done", "info"} {
		if kinds[k] == 0 {
			t.Errorf("no %s event in %v", k, kinds)
		}
	}
	if id := strings.TrimSpace(r.Stdout); !regexp.MustCompile(`^\d{8}-\d{6}-[0-9a-f]{4}$`).MatchString(id) {
		t.Errorf("stdout %q, want only the backup ID", r.Stdout)
	}
	if r := p.Autobackup(t, "run", "--progress", "fancy"); r.Code != 2 || !strings.Contains(r.Stderr, "--progress") {
		t.Errorf("run --progress fancy: %v, want exit 2 naming the flag", r)
	}
}
