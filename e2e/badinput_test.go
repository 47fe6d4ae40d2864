package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInput: every kind of bad input is a one-line error saying what to
// fix, exit code 2, and changes nothing: no container event, autobackup.toml
// byte for byte as it was (a broken one included: it is never rewritten).
func TestBadInput(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	id := mustRun(t, p)
	statePath := filepath.Join(p.Dir, "autobackup.toml")
	historyPath := filepath.Join(p.Dir, "autobackup.history.toml")
	good := []byte("# the user's settings\n[settings]\nkeep_min = 3 # three\n")
	history, err := os.ReadFile(historyPath)
	if err != nil {
		t.Fatal(err)
	}
	// Line 3 is broken: the string is not closed.
	const broken = "[settings]\nenabled = true\nschedule = \"0 2 * *\nkeep_min = 3\n"
	empty := t.TempDir()

	for _, c := range []struct {
		name  string
		dir   string // where to run; the project directory if ""
		state string // autobackup.toml to start from; the good one if ""
		args  []string
		want  []string // in the message
		not   []string // not in the message (said twice, or words of no use)
	}{
		{name: "no-compose-file", dir: empty, args: []string{"run"}, want: []string{"compose", empty}},
		{name: "invalid-yaml", args: []string{"run", "-f", "bad-yaml.yaml"}, want: []string{"yaml: line 4"}},
		{name: "unknown-dependency", args: []string{"run", "-f", "unknown-dep.yaml"}, want: []string{"cache"}, not: []string{"invalid compose project: invalid compose project", `": invalid compose project`}},
		{name: "cycle", args: []string{"run", "-f", "cycle.yaml"}, want: []string{"cycle"}},
		{name: "invalid-project-name", args: []string{"run", "-p", "Bad Name"}, want: []string{"Bad Name"}},
		{name: "broken-state-file/run", state: broken, args: []string{"run"}, want: []string{"autobackup.toml line 3", "not changed"}},
		{name: "broken-state-file/config-set", state: broken, args: []string{"config", "set", "keep_min", "4"}, want: []string{"autobackup.toml line 3"}},
		{name: "broken-state-file/restore", state: broken, args: []string{"restore", id, "--yes"}, want: []string{"autobackup.toml line 3"}},
		{name: "invalid-cron", args: []string{"config", "set", "schedule", "0 0 2 * * *"}, want: []string{"schedule", "0 0 2 * * *"}},
		{name: "unknown-setting", args: []string{"config", "set", "frobnicate", "1"}, want: []string{"frobnicate"}},
		{name: "cron-field-out-of-range", args: []string{"config", "set", "schedule", "0 25 * * *"}, want: []string{"hour", `"25"`, "0-23"}, not: []string{"above maximum"}},
		{name: "invalid-setting-value", args: []string{"config", "set", "retention_days", "soon"}, want: []string{"retention_days"}},
		{name: "negative-setting-value", args: []string{"config", "set", "retention_days", "-1"}, want: []string{"retention_days", "0"}, not: []string{"shorthand"}},
		{name: "unknown-backup-id", args: []string{"restore", "20990101-000000-abcd", "--yes"}, want: []string{"20990101-000000-abcd", "docker autobackup list"}, not: []string{"backup not found", "/backups"}},
		{name: "not-a-backup-id", args: []string{"restore", "yesterday", "--yes"}, want: []string{"yesterday"}},
		{name: "volume-not-in-backup", args: []string{"restore", id, "--volume", "nope", "--yes"}, want: []string{"nope"}, not: []string{"invalid request"}},
		{name: "unknown-flag", args: []string{"run", "--frobnicate"}, want: []string{"--frobnicate", "--help"}},
		{name: "unknown-command", args: []string{"frobnicate"}, want: []string{"frobnicate"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := good
			if c.state != "" {
				before = []byte(c.state)
			}
			if err := os.WriteFile(statePath, before, 0o600); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(statePath, good, 0o600)
			dir := p.Dir
			if c.dir != "" {
				dir = c.dir
			}
			ev := p.StartEvents(t)
			r := run(t, dir, "docker", append([]string{"autobackup"}, c.args...)...)
			evs := ev.Stop()

			if r.Code != 2 {
				t.Errorf("exit %d, want 2: %v", r.Code, r)
			}
			msg := strings.TrimSpace(r.Stderr)
			lines := strings.Split(msg, "\n")
			if !strings.HasPrefix(lines[0], "autobackup: ") || len(lines) > 2 || (len(lines) == 2 && !strings.HasPrefix(lines[1], "Try: ")) {
				t.Errorf("want one line (and at most a Try: hint), got:\n%s", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message does not mention %q:\n%s", w, msg)
				}
			}
			for _, w := range c.not {
				if strings.Contains(msg, w) {
					t.Errorf("message says %q:\n%s", w, msg)
				}
			}
			if r.Stdout != "" {
				t.Errorf("stdout: %q", r.Stdout)
			}
			for _, e := range evs {
				if e.Type == "container" {
					t.Errorf("container touched: %s %s", e.Service, e.Action)
				}
			}
			after, err := os.ReadFile(statePath)
			if err != nil || string(after) != string(before) {
				t.Errorf("autobackup.toml changed (%v):\n%s", err, after)
			}
			if after, err := os.ReadFile(historyPath); err != nil || string(after) != string(history) {
				t.Errorf("autobackup.history.toml changed (%v):\n%s", err, after)
			}
			if left, _ := os.ReadDir(empty); len(left) > 0 {
				t.Errorf("files created in a directory without a project: %v", left)
			}
		})
	}
	wantAllUp(t, p, "db")
}
