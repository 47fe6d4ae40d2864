package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestDockerContexts checks that the engine client comes from the docker
// CLI: `docker --context X autobackup` and DOCKER_HOST select the engine.
func TestDockerContexts(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	ctxName := p.Name + "-ctx"
	if r := Docker(t, "context", "create", ctxName, "--docker", "host="+host); r.Code != 0 {
		t.Fatalf("create context: %v", r)
	}
	t.Cleanup(func() { Docker(t, "context", "rm", "-f", ctxName) })

	r := run(t, p.Dir, "docker", "--context", ctxName, "autobackup", "run", "--dry-run")
	if r.Code != 0 || !strings.Contains(r.Stdout, p.Volume("data")) {
		t.Fatalf("docker --context %s autobackup run --dry-run: %v", ctxName, r)
	}
	// A context pointing nowhere: the plugin must use it, and say so.
	bad := p.Name + "-nowhere"
	if r := Docker(t, "context", "create", bad, "--docker", "host=unix:///nonexistent/docker.sock"); r.Code != 0 {
		t.Fatalf("create context: %v", r)
	}
	t.Cleanup(func() { Docker(t, "context", "rm", "-f", bad) })
	r = run(t, p.Dir, "docker", "--context", bad, "autobackup", "run")
	if r.Code == 0 || !strings.Contains(r.Stderr, "/nonexistent/docker.sock") {
		t.Fatalf("run against a context with no engine: want a failure naming its socket: %v", r)
	}
	if _, err := os.Stat(p.Dir + "/backups"); err == nil {
		t.Error("a run that could not reach the engine created the backup directory")
	}
	// DOCKER_HOST works the same way.
	r = runCmd(t.Context(), p.Dir, []string{"DOCKER_HOST=unix:///nonexistent/docker.sock", "DOCKER_CONTEXT="}, "docker", "autobackup", "run", "--dry-run")
	if r.Code == 0 || !strings.Contains(r.Stderr, "/nonexistent/docker.sock") {
		t.Fatalf("DOCKER_HOST pointing nowhere: %v", r)
	}
	wantAllUp(t, p, "app")
}
