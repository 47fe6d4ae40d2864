package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// testProject writes a minimal compose project into a temporary directory
// and returns the options that select it.
func testProject(t *testing.T, extra string) *globalOptions {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := "services:\n  db:\n    image: busybox\n    volumes: [\"dbdata:/data\"]\nvolumes:\n  dbdata:\n" + extra
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return &globalOptions{Options: compose.Options{ProjectDir: dir, WorkingDir: dir}}
}

func stateFile(g *globalOptions) string { return filepath.Join(g.ProjectDir, state.FileName) }

func TestConfigSetUnset(t *testing.T) {
	ctx := context.Background()
	g := testProject(t, "x-autobackup:\n  retention_days: 30\n")
	var out bytes.Buffer

	if err := runConfigSet(ctx, &out, g, "schedule", "30 3 * * *"); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, `schedule = "30 3 * * *" (from file; was "0 2 * * *" from default)`) {
		t.Errorf("set output:\n%s", got)
	}
	f, err := state.Load(stateFile(g))
	if err != nil {
		t.Fatal(err)
	}
	if f.Settings.Schedule == nil || *f.Settings.Schedule != "30 3 * * *" {
		t.Errorf("schedule in file = %v", f.Settings.Schedule)
	}

	out.Reset()
	if err := runConfigSet(ctx, &out, g, "Retention-Days", "10"); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "retention_days = 10 (from file; was 30 from compose)") {
		t.Errorf("set output:\n%s", got)
	}
	out.Reset()
	if err := runConfigUnset(ctx, &out, g, "retention_days"); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "retention_days = 30 (from compose; was 10 from file)") {
		t.Errorf("unset output:\n%s", got)
	}

	out.Reset()
	if err := runConfigShow(ctx, &out, g, configOptions{format: "json"}); err != nil {
		t.Fatal(err)
	}
	var entries []configEntry
	if err := json.Unmarshal(out.Bytes(), &entries); err != nil {
		t.Fatalf("config --format json: %v\n%s", err, out.String())
	}
	got := map[string]configEntry{}
	for _, e := range entries {
		got[e.Key] = e
	}
	for key, want := range map[string]configEntry{
		"schedule":       {Value: "30 3 * * *", Source: state.SourceFile},
		"retention_days": {Value: "30", Source: state.SourceCompose},
		"keep_min":       {Value: "3", Source: state.SourceDefault},
		"enabled":        {Value: "false", Source: state.SourceDefault},
	} {
		if g := got[key]; g.Value != want.Value || g.Source != want.Source || g.Help == "" {
			t.Errorf("%s = %+v, want value %q source %q and help", key, g, want.Value, want.Source)
		}
	}
	if n := len(state.Keys()) + len(state.RemoteKeys()); len(entries) != n {
		t.Errorf("config lists %d settings, want all %d", len(entries), n)
	}

	out.Reset()
	if err := runConfigShow(ctx, &out, g, configOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "KEY") || !strings.Contains(out.String(), "compression_level") {
		t.Errorf("config table:\n%s", out.String())
	}
}

func TestConfigSetInvalid(t *testing.T) {
	ctx := context.Background()
	g := testProject(t, "")
	if err := os.WriteFile(filepath.Join(g.ProjectDir, "afile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A file the user wrote, with a comment: it must come through byte for byte.
	before := []byte("# mine\n[settings]\nkeep_min = 4\n")
	if err := os.WriteFile(stateFile(g), before, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ key, value, want string }{
		{"schedule", "0 0 2 * * *", "example: docker autobackup config set schedule"},
		{"schedule", "every night", "example:"},
		{"retention_days", "-1", "example: docker autobackup config set retention_days 14"},
		{"directory", "afile", "not a directory"},
		{"colour", "blue", "unknown setting"},
		{"enabled", "maybe", "want true or false"},
	} {
		var out bytes.Buffer
		err := runConfigSet(ctx, &out, g, tt.key, tt.value)
		if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config set %s %q: err = %v; want a usage error containing %q", tt.key, tt.value, err, tt.want)
		}
		if code, _ := classify(err); code != ExitUsage {
			t.Errorf("config set %s %q: exit code %d, want %d", tt.key, tt.value, code, ExitUsage)
		}
		after, _ := os.ReadFile(stateFile(g))
		if !bytes.Equal(after, before) {
			t.Errorf("config set %s %q changed the file:\n%s", tt.key, tt.value, after)
		}
	}
}

func TestEnableDisable(t *testing.T) {
	ctx := context.Background()
	g := testProject(t, "")
	var out bytes.Buffer
	if err := runConfigSet(ctx, &out, g, "enabled", "true"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "docker autobackup daemon") {
		t.Errorf("enable does not say what runs the schedule:\n%s", out.String())
	}
	f, _ := state.Load(stateFile(g))
	if f.Settings.Enabled == nil || !*f.Settings.Enabled {
		t.Errorf("enabled not stored: %+v", f.Settings)
	}
	out.Reset()
	if err := runConfigSet(ctx, &out, g, "enabled", "false"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "schedule remove") {
		t.Errorf("disable does not mention removing a host entry:\n%s", out.String())
	}
}

// The commands are reachable through the cobra tree with their arguments
// checked.
func TestConfigCommandTree(t *testing.T) {
	root := NewRootCommand(nil)
	for _, args := range [][]string{
		{"config"}, {"config", "show"}, {"config", "set"}, {"config", "unset"}, {"enable"}, {"disable"},
		{"schedule"}, {"schedule", "install"}, {"schedule", "remove"}, {"prune"}, {"daemon"},
	} {
		c, rest, err := root.Find(args)
		if err != nil || len(rest) != 0 || c.Name() != args[len(args)-1] {
			t.Errorf("find %v: %v, %v, %v", args, c.Name(), rest, err)
		}
	}
	set, _, _ := root.Find([]string{"config", "set"})
	if err := set.Args(set, []string{"schedule"}); err == nil || !errors.Is(err, errUsage) {
		t.Errorf("config set with one argument: %v, want a usage error", err)
	}
}
