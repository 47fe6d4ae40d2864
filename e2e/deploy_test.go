package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runEnv runs name args... in dir with extra environment (later entries
// win), bounded like the harness's commands. It never fails the test.
func runEnv(t *testing.T, dir string, env []string, name string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	r := runCmd(ctx, dir, env, name, args...)
	t.Logf("$ %s %s %s  (exit %d)", strings.Join(env, " "), name, strings.Join(args, " "), r.Code)
	return r
}

// buildImage builds dir's Dockerfile with the classic builder (no registry,
// no buildx) as tag.
func buildImage(t *testing.T, dir, tag string) {
	t.Helper()
	if r := runEnv(t, "", []string{"DOCKER_BUILDKIT=0"}, "docker", "build", "-q", "-t", tag, dir); r.Code != 0 {
		t.Fatalf("build %s: %v", tag, r)
	}
}

func imageID(t *testing.T, ref string) string {
	t.Helper()
	r := Docker(t, "image", "inspect", "--format", "{{.Id}}", ref)
	if r.Code != 0 {
		t.Fatalf("inspect image %s: %v", ref, r)
	}
	return strings.TrimSpace(r.Stdout)
}

// setVersion points the project's .env at image, as a user changes the
// version before deploying.
func setVersion(t *testing.T, p *Project, image string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.Dir, ".env"), []byte("APP_IMAGE="+image+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// volumeFiles returns the contents of the files in the project's volume
// (missing ones as "<missing>"), read through a throwaway container.
func volumeFiles(t *testing.T, p *Project, vol string, files ...string) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		r := Docker(t, "run", "--rm", "--network", "none", "-v", p.Volume(vol)+":/data:ro", testImage, "cat", "/data/"+f)
		if r.Code != 0 {
			out = append(out, "<missing>")
			continue
		}
		out = append(out, strings.TrimSpace(r.Stdout))
	}
	return out
}

// TestDeploy runs examples/deploy.sh the way an operator does: the project
// runs v1, .env is changed to a new version, deploy.sh upgrades.
func TestDeploy(t *testing.T) {
	script := filepath.Join(repoRoot, "examples", "deploy.sh")
	var cleanupImages []string
	// Registered before NewProject's cleanup, so it runs after it: the
	// images are no longer used by then.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		for _, ref := range cleanupImages {
			runCmd(ctx, "", nil, "docker", "image", "rm", ref)
		}
	})
	p := NewProject(t)
	v1, v2 := p.Name+"-app:v1", p.Name+"-app:v2"
	rollbackRepo := "autobackup-rollback/" + p.Name + "-app"
	cleanupImages = append(cleanupImages, v1, v2)
	buildImage(t, filepath.Join(p.Dir, "v1"), v1)
	buildImage(t, filepath.Join(p.Dir, "v2"), v2)
	v1ID := imageID(t, v1)

	setVersion(t, p, v1)
	p.Compose(t, "up", "-d", "--wait")
	if got, want := volumeFiles(t, p, "appdata", "content", "keep"), []string{"written by v1", "keep"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("v1 data = %q, want %q", got, want)
	}

	t.Run("good upgrade", func(t *testing.T) {
		// The same image under a new tag: compose has nothing to change,
		// the script must still take its backup and succeed.
		v1b := p.Name + "-app:v1b"
		if r := Docker(t, "image", "tag", v1, v1b); r.Code != 0 {
			t.Fatal(r)
		}
		cleanupImages = append(cleanupImages, v1b)
		setVersion(t, p, v1b)
		r := runEnv(t, p.Dir, []string{"PULL=0"}, script)
		if r.Code != 0 {
			t.Fatalf("deploy.sh: %v", r)
		}
		if !strings.Contains(r.Stderr, "upgraded") {
			t.Errorf("deploy.sh did not report the upgrade: %v", r)
		}
		list := p.Autobackup(t, "list")
		if !strings.Contains(list.Stdout, "pre-upgrade") {
			t.Errorf("no pre-upgrade backup listed: %v", list)
		}
		if r := Docker(t, "image", "ls", "-q", rollbackRepo); strings.TrimSpace(r.Stdout) != "" {
			t.Errorf("rollback tags left after a good upgrade: %v", r)
		}
	})

	t.Run("broken upgrade rolls back", func(t *testing.T) {
		setVersion(t, p, v2)
		r := runEnv(t, p.Dir, []string{"PULL=0"}, script, "--", "--wait-timeout", "60")
		// The rollback tags the script made are in use now; remove them last.
		rollback := strings.Fields(Docker(t, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", rollbackRepo).Stdout)
		cleanupImages = append(cleanupImages, rollback...)
		if r.Code != 1 {
			t.Fatalf("deploy.sh exit %d, want 1 (upgrade failed, rolled back): %v", r.Code, r)
		}
		if !strings.Contains(r.Stderr, "rolled back") {
			t.Errorf("deploy.sh did not report the rollback: %v", r)
		}

		// The data is v1's again: the file v2 overwrote and the one it deleted.
		if got, want := volumeFiles(t, p, "appdata", "content", "keep"), []string{"written by v1", "keep"}; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("data after rollback = %q, want %q", got, want)
		}
		// And v1 runs, healthy.
		if status, health := p.ContainerState(t, "app"); status != "running" || health != "healthy" {
			t.Errorf("app after rollback: %s, %s; want running, healthy", status, health)
		}
		id := p.containerID(t, "app")
		if got := strings.TrimSpace(Docker(t, "inspect", "--format", "{{.Image}}", id).Stdout); got != v1ID {
			t.Errorf("app runs image %s, want v1 %s", got, v1ID)
		}
	})

	// After a deploy the project has a backup to report: the docker CLI
	// hooks are checked here, on this project.
	t.Run("cli hooks", func(t *testing.T) {
		setVersion(t, p, v1)
		testCLIHooks(t, p)
	})
}
