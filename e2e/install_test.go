package e2e

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	autobackup "github.com/docker-autobackup/docker-autobackup"
)

// TestInstall runs install.sh like a user, into a DOCKER_CONFIG of its own:
// build from source, check `docker autobackup version` there, install again
// (nothing changes), with --hooks, then --uninstall.
func TestInstall(t *testing.T) {
	cfg := t.TempDir()
	env := []string{"DOCKER_CONFIG=" + cfg, "CGO_ENABLED=1"} // the script must force a static build itself
	script := filepath.Join(repoRoot, "install.sh")
	plugin := filepath.Join(cfg, "cli-plugins", "docker-autobackup")
	version := "docker autobackup " + autobackup.Version() + " "

	r := runEnv(t, t.TempDir(), env, script)
	if r.Code != 0 {
		t.Fatalf("install.sh: %v", r)
	}
	fi, err := os.Stat(plugin)
	if err != nil {
		t.Fatalf("not installed: %v", err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("plugin mode %v, want 0755", fi.Mode().Perm())
	}
	if bi := runEnv(t, "", nil, "go", "version", "-m", plugin); !strings.Contains(bi.Stdout, "CGO_ENABLED=0") {
		t.Errorf("installed binary is not a static build:\n%s", bi.Stdout)
	}
	if v := runEnv(t, "", env, "docker", "autobackup", "version"); v.Code != 0 || !strings.HasPrefix(v.Stdout, version) {
		t.Errorf("docker autobackup version: %v; want %q...", v, version)
	}

	// Again, with --hooks: the same binary stays, hooks are switched on.
	r = runEnv(t, t.TempDir(), env, script, "--hooks")
	if r.Code != 0 {
		t.Fatalf("install.sh --hooks (second run): %v", r)
	}
	if !strings.Contains(r.Stderr, "up to date") {
		t.Errorf("second install replaced an identical binary: %v", r)
	}
	if fi2, err := os.Stat(plugin); err != nil || !os.SameFile(fi, fi2) {
		t.Errorf("second install replaced the file (%v)", err)
	}
	cmds := hooksConfig(t, filepath.Join(cfg, "config.json"))
	if cmds != "compose up,compose down" {
		t.Errorf("config.json plugins.autobackup.hooks = %q", cmds)
	}

	r = runEnv(t, t.TempDir(), env, script, "--uninstall")
	if r.Code != 0 {
		t.Fatalf("install.sh --uninstall: %v", r)
	}
	if _, err := os.Stat(plugin); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("plugin still there after --uninstall: %v", err)
	}
	if cmds := hooksConfig(t, filepath.Join(cfg, "config.json")); cmds != "" {
		t.Errorf("hooks still configured after --uninstall: %q", cmds)
	}
	if v := runEnv(t, "", env, "docker", "autobackup", "version"); v.Code == 0 {
		t.Errorf("docker autobackup still runs after --uninstall: %v", v)
	}
	if r := runEnv(t, t.TempDir(), env, script, "--uninstall"); r.Code != 0 {
		t.Errorf("second --uninstall: %v", r)
	}

	if r := runEnv(t, "", env, script, "--no-such-flag"); r.Code != 2 {
		t.Errorf("unknown flag: exit %d, want 2: %v", r.Code, r)
	}
}

// hooksConfig returns plugins.autobackup.hooks from a config.json, and
// fails the test if features.hooks does not match it.
func hooksConfig(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Plugins  map[string]map[string]string
		Features map[string]string
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("config.json: %v\n%s", err, data)
	}
	hooks := c.Plugins["autobackup"]["hooks"]
	if (hooks != "") != (c.Features["hooks"] == "true") {
		t.Errorf("plugins.autobackup.hooks = %q but features.hooks = %q", hooks, c.Features["hooks"])
	}
	return hooks
}

// testCLIHooks checks the docker CLI hooks on p, which has a successful
// backup: `hooks enable` in a DOCKER_CONFIG of its own, the hook subcommand
// called the way the CLI calls it, and the real CLI on a pseudo-terminal.
func testCLIHooks(t *testing.T, p *Project) {
	cfg := t.TempDir()
	plugins := filepath.Join(cfg, "cli-plugins")
	if err := os.Mkdir(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"docker-autobackup", "docker-compose"} {
		if err := os.Symlink(filepath.Join(dockerConfig, "cli-plugins", name), filepath.Join(plugins, name)); err != nil {
			t.Fatal(err)
		}
	}
	const keep = `{"auths": {"registry.example.com": {"auth": "eDp5"}}, "psFormat": "table {{.Names}}"}`
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(keep), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + cfg}

	if r := runEnv(t, p.Dir, env, "docker", "autobackup", "hooks", "enable"); r.Code != 0 {
		t.Fatalf("hooks enable: %v", r)
	}
	if got := hooksConfig(t, filepath.Join(cfg, "config.json")); got != "compose up,compose down" {
		t.Errorf("plugins.autobackup.hooks = %q", got)
	}
	var c map[string]any
	data, _ := os.ReadFile(filepath.Join(cfg, "config.json"))
	if err := json.Unmarshal(data, &c); err != nil || c["psFormat"] != "table {{.Names}}" || c["auths"] == nil {
		t.Errorf("hooks enable lost other settings (%v):\n%s", err, data)
	}

	// As manager.(*Plugin).RunHook runs it, with an engine that would hang
	// if the hook tried to reach it.
	req := `{"RootCmd":"compose up","Flags":{"d":"","wait":""},"CommandError":""}`
	r := runEnv(t, p.Dir, append(env, "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=docker", "DOCKER_HOST=tcp://10.255.255.1:2375"),
		PluginPath(), "autobackup", "docker-cli-plugin-hooks", req)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("hook subcommand: %v", r)
	}
	var msg struct {
		Type     int
		Template string
	}
	if err := json.Unmarshal([]byte(r.Stdout), &msg); err != nil {
		t.Fatalf("hook answer is not a hook message: %v: %q", err, r.Stdout)
	}
	const wantPrefix, wantSuffix = "Last backup of this project: ", "(success). Back up now: docker autobackup run"
	if msg.Type != 0 || !strings.HasPrefix(msg.Template, wantPrefix) || !strings.HasSuffix(msg.Template, wantSuffix) {
		t.Errorf("hook message = %+v, want %q…%q", msg, wantPrefix, wantSuffix)
	}
	// Outside a project it still answers, with the first step.
	if r := runEnv(t, t.TempDir(), env, PluginPath(), "autobackup", "docker-cli-plugin-hooks", req); r.Code != 0 || !strings.Contains(r.Stdout, "No backup of this project yet") {
		t.Errorf("hook outside a project: %v", r)
	}
	// Garbage in: nothing out, exit 0.
	if r := runEnv(t, p.Dir, env, PluginPath(), "autobackup", "docker-cli-plugin-hooks", "{not json"); r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Errorf("hook with a bad request: %v", r)
	}

	// The real thing: the docker CLI runs hooks only when stdout is a
	// terminal; script(1) gives it one. Compose runs without -p: the CLI
	// matches the hook against the command line as typed.
	if _, err := exec.LookPath("script"); err != nil {
		t.Log("script(1) not found: skipping the check through the docker CLI on a terminal")
	} else {
		r := runEnv(t, p.Dir, append(env, "DOCKER_CLI_HOOKS=true"), "script", "-qec", "docker compose up -d --wait", "/dev/null")
		if r.Code != 0 {
			t.Fatalf("docker compose up on a pty: %v", r)
		}
		if !strings.Contains(r.Stdout, "What's next:") || !strings.Contains(r.Stdout, wantPrefix) {
			t.Errorf("no autobackup hint after docker compose up:\n%s", r.Stdout)
		}
	}

	if r := runEnv(t, p.Dir, env, "docker", "autobackup", "hooks", "disable"); r.Code != 0 {
		t.Fatalf("hooks disable: %v", r)
	}
	if got := hooksConfig(t, filepath.Join(cfg, "config.json")); got != "" {
		t.Errorf("hooks still configured after disable: %q", got)
	}
}
