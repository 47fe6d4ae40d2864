package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/cli/cli-plugins/hooks"
	"github.com/docker/cli/cli-plugins/manager"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

var hookNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// writeState saves an autobackup.toml in a new directory with the given
// backups and returns the directory.
func writeState(t testing.TB, backups ...state.Backup) string {
	t.Helper()
	dir := t.TempDir()
	f := &state.File{}
	for _, b := range backups {
		f.RecordBackup(b)
	}
	if err := state.Save(filepath.Join(dir, state.FileName), f); err != nil {
		t.Fatal(err)
	}
	return dir
}

func backupAt(id string, started time.Time, status string) state.Backup {
	b := state.Backup{ID: id, Started: started, Finished: started.Add(time.Second), Status: status, Volumes: []string{"p_data"}, Path: "backups/" + id}
	if status != state.StatusSuccess {
		b.Error = "stop db: timeout"
	}
	return b
}

func TestHookHint(t *testing.T) {
	okDir := writeState(t, backupAt("20261126-090000-a1b2", hookNow.Add(-3*time.Hour), state.StatusSuccess))
	failedDir := writeState(t,
		backupAt("20261124-090000-a1b2", hookNow.Add(-51*time.Hour), state.StatusSuccess),
		backupAt("20261126-114000-c3d4", hookNow.Add(-20*time.Minute), state.StatusFailed))
	neverDir := writeState(t, backupAt("20261126-114000-c3d4", hookNow.Add(-20*time.Minute), state.StatusFailed))
	noneDir := t.TempDir()
	brokenDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(brokenDir, state.FileName), []byte("[state\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	futureDir := t.TempDir() // a newer version's keys must not silence the hint
	if err := os.WriteFile(filepath.Join(futureDir, state.FileName), []byte("[settings]\nnew_thing = 1\n[state]\nlast_success_id = \"x\"\nlast_success_time = 2026-11-26T11:00:00Z\nlast_backup_status = \"success\"\nlast_backup_time = 2026-11-26T11:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	reorderedDir := t.TempDir() // [state] after the history: the head alone has no [state]
	if err := os.WriteFile(filepath.Join(reorderedDir, state.FileName), []byte("[[backups]]\nid = \"a\"\n\n[state]\nlast_success_id = \"x\"\nlast_success_time = 2026-11-26T10:00:00Z\nlast_backup_status = \"success\"\nlast_backup_time = 2026-11-26T10:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	up := manager.HookPluginData{RootCmd: "compose up", Flags: map[string]string{"d": ""}}
	upFailed := manager.HookPluginData{RootCmd: "compose up", CommandError: "exit status 1"}
	down := manager.HookPluginData{RootCmd: "compose down", Flags: map[string]string{}}
	downV := manager.HookPluginData{RootCmd: "compose down", Flags: map[string]string{"v": ""}}
	downVolumes := manager.HookPluginData{RootCmd: "compose down", Flags: map[string]string{"volumes": ""}}

	for _, tc := range []struct {
		name string
		req  manager.HookPluginData
		dir  string
		want string
	}{
		{"up, recent success", up, okDir, "Last backup of this project: 3 h ago (success). Back up now: docker autobackup run"},
		{"down, recent success", down, okDir, "Last backup of this project: 3 h ago (success). Back up now: docker autobackup run"},
		{"up, no state file", up, noneDir, "No backup of this project yet. Back up now: docker autobackup run"},
		{"up, last failed", up, failedDir, "The last backup of this project FAILED (20 min ago); the last good one is from 2 days ago. See: docker autobackup status"},
		{"up, never succeeded", up, neverDir, "The last backup of this project FAILED (20 min ago) and none has succeeded yet. See: docker autobackup status"},
		{"up failed: offer the restore", upFailed, okDir, "If this failed start damaged the data, restore the last backup (3 h ago): docker autobackup restore 20261126-090000-a1b2"},
		{"up failed, nothing to restore", upFailed, noneDir, ""},
		{"down -v: offer the restore", downV, okDir, "The volumes were removed. The last backup (3 h ago) brings them back: docker autobackup restore 20261126-090000-a1b2"},
		{"down --volumes", downVolumes, okDir, "The volumes were removed. The last backup (3 h ago) brings them back: docker autobackup restore 20261126-090000-a1b2"},
		{"down -v, no backup", downV, noneDir, ""},
		{"broken state file: silent", up, brokenDir, ""},
		{"unknown keys tolerated", up, futureDir, "Last backup of this project: 1 h ago (success). Back up now: docker autobackup run"},
		{"[state] after the history", up, reorderedDir, "Last backup of this project: 2 h ago (success). Back up now: docker autobackup run"},
		{"a command we did not ask for", manager.HookPluginData{RootCmd: "compose ps"}, okDir, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hookHint(tc.req, tc.dir, hookNow); got != tc.want {
				t.Errorf("hint:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestAgo(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Minute, "just now"},
		{30 * time.Second, "less than a minute ago"},
		{59 * time.Minute, "59 min ago"},
		{47 * time.Hour, "47 h ago"},
		{72 * time.Hour, "3 days ago"},
	} {
		if got := ago(hookNow, hookNow.Add(-tc.d)); got != tc.want {
			t.Errorf("ago(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestCLIHookOutput checks the answer the way the docker CLI reads it:
// JSON hooks.HookMessage, rendered through hooks.ParseTemplate.
func TestCLIHookOutput(t *testing.T) {
	dir := writeState(t, backupAt("20261126-090000-a1b2", time.Now().Add(-3*time.Hour), state.StatusSuccess))
	t.Chdir(dir)
	for _, tc := range []struct {
		name string
		args []string
		want string // "" for no output at all
	}{
		{"up", []string{`{"RootCmd":"compose up","Flags":{"d":""},"CommandError":""}`}, "Last backup of this project: 3 h ago (success). Back up now: docker autobackup run"},
		{"not JSON", []string{`{"RootCmd":`}, ""},
		{"no argument", nil, ""},
		{"two arguments", []string{`{}`, `{}`}, ""},
		{"empty request", []string{`{}`}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			runCLIHook(&out, tc.args, time.Now())
			if tc.want == "" {
				if out.Len() != 0 {
					t.Errorf("output %q, want none", out.String())
				}
				return
			}
			var msg hooks.HookMessage
			if err := json.Unmarshal(out.Bytes(), &msg); err != nil {
				t.Fatalf("output is not a HookMessage: %v: %q", err, out.String())
			}
			if msg.Type != hooks.NextSteps {
				t.Errorf("type = %v, want NextSteps", msg.Type)
			}
			lines, err := hooks.ParseTemplate(msg.Template, &cobra.Command{Use: "compose"})
			if err != nil {
				t.Fatalf("template %q: %v", msg.Template, err)
			}
			if len(lines) != 1 || lines[0] != tc.want {
				t.Errorf("rendered %q, want [%q]", lines, tc.want)
			}
		})
	}
}

func TestTemplateEscape(t *testing.T) {
	in := "id {{.Name}} and {{flag . \"x\"}} }} {"
	lines, err := hooks.ParseTemplate(templateEscape(in), &cobra.Command{Use: "compose"})
	if err != nil || len(lines) != 1 || lines[0] != in {
		t.Errorf("ParseTemplate(templateEscape(%q)) = %q, %v", in, lines, err)
	}
}

// TestCLIHookNoEngine runs the hook through the plugin's real command tree
// with DOCKER_HOST pointing at a socket we listen on: the hook must answer
// without a single connection to the "engine".
func TestCLIHookNoEngine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Chdir(writeState(t, backupAt("20261126-090000-a1b2", time.Now().Add(-time.Hour), state.StatusSuccess)))

	var out, errOut bytes.Buffer
	cli, err := command.NewDockerCli(command.WithOutputStream(&out), command.WithErrorStream(&errOut))
	if err != nil {
		t.Fatal(err)
	}
	root := NewRootCommand(cli)
	root.SetArgs([]string{"docker-cli-plugin-hooks", `{"RootCmd":"compose up","Flags":{},"CommandError":""}`})
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.Execute(); err != nil {
		t.Fatalf("hook command failed: %v", err)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the hook connected to DOCKER_HOST %d time(s)", n)
	}
	if !strings.Contains(out.String(), "Last backup of this project: 1 h ago") || errOut.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
}

// BenchmarkCLIHook measures the hook's own work with a full history (the
// docker CLI waits for it before the user's prompt comes back): go test
// -bench CLIHook ./plugin/.
func BenchmarkCLIHook(b *testing.B) {
	var backups []state.Backup
	start := hookNow.Add(-state.MaxHistory * time.Hour)
	for i := range state.MaxHistory {
		at := start.Add(time.Duration(i) * time.Hour)
		backups = append(backups, backupAt(fmt.Sprintf("%s-%04x", at.Format("20060102-150405"), i), at, state.StatusSuccess))
	}
	dir := writeState(b, backups...)
	b.Chdir(dir)
	req := `{"RootCmd":"compose up","Flags":{"d":""},"CommandError":""}`
	var out bytes.Buffer
	for b.Loop() {
		out.Reset()
		runCLIHook(&out, []string{req}, hookNow)
	}
	if out.Len() == 0 {
		b.Fatal("no hint")
	}
}
