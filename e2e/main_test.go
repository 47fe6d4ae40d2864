package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testImage is the image fixtures run; scripts/build-images.sh builds it.
const testImage = "autobackup-test/busybox:latest"

// Set by TestMain, read-only afterwards.
var (
	repoRoot     string // the module root, parent of e2e/
	dockerConfig string // temporary DOCKER_CONFIG holding cli-plugins/
	pluginPath   string // dockerConfig/cli-plugins/docker-autobackup
)

// TestMain prepares the environment every e2e test shares: a temporary
// DOCKER_CONFIG whose cli-plugins/ holds the freshly built plugin and
// Compose v2, and the busybox test image. Without a Docker engine it skips
// the package (exit 0) unless CI=true.
func TestMain(m *testing.M) {
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	ci := os.Getenv("CI") == "true"
	// skip ends the package early: a message and exit 0 on a laptop, a
	// failure in CI, where a silently skipped e2e suite would hide breakage.
	skip := func(format string, args ...any) int {
		msg := fmt.Sprintf(format, args...)
		if ci {
			fmt.Fprintf(os.Stderr, "e2e: FAIL: %s (CI=true: the end-to-end tests must run)\n", msg)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: SKIP all end-to-end tests: %s\n", msg)
		return 0
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: "+format+"\n", args...)
		return 1
	}

	if _, err := exec.LookPath("docker"); err != nil {
		return skip("no docker CLI on PATH")
	}
	if out, err := setupOutput(30*time.Second, "", "docker", "info", "--format", "{{.ServerVersion}}"); err != nil {
		return skip("no Docker engine answers 'docker info': %v: %s", err, strings.TrimSpace(out))
	}

	wd, err := os.Getwd()
	if err != nil {
		return fail("%v", err)
	}
	repoRoot = filepath.Dir(wd)

	// Keep talking to the engine the user's current context points at, even
	// though DOCKER_CONFIG (where contexts live) is about to change.
	if os.Getenv("DOCKER_HOST") == "" && os.Getenv("DOCKER_CONTEXT") == "" {
		host, err := setupOutput(30*time.Second, "", "docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}")
		if err == nil && strings.TrimSpace(host) != "" {
			os.Setenv("DOCKER_HOST", strings.TrimSpace(host))
		}
	}
	os.Unsetenv("DOCKER_CONTEXT")

	compose, why := findCompose(ci)
	if compose == "" {
		return skip("%s", why)
	}

	dockerConfig, err = os.MkdirTemp("", "autobackup-e2e-config-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(dockerConfig)
	plugins := filepath.Join(dockerConfig, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return fail("%v", err)
	}

	pluginPath = filepath.Join(plugins, "docker-autobackup")
	fmt.Fprintf(os.Stderr, "e2e: building the plugin into %s\n", pluginPath)
	if out, err := setupOutput(5*time.Minute, repoRoot, "env", "CGO_ENABLED=0", "go", "build", "-o", pluginPath, "./cmd/docker-autobackup"); err != nil {
		return fail("build the plugin: %v\n%s", err, out)
	}
	if err := copyFile(compose, filepath.Join(plugins, "docker-compose"), 0o755); err != nil {
		return fail("install compose: %v", err)
	}

	// From here on every docker command, ours and the tests', sees only our
	// plugins, and no Compose setting of the user's leaks in.
	os.Setenv("DOCKER_CONFIG", dockerConfig)
	for _, k := range []string{"COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_ENV_FILES", "COMPOSE_PATH_SEPARATOR"} {
		os.Unsetenv(k)
	}
	os.Setenv("COMPOSE_ANSI", "never")
	os.Setenv("COMPOSE_MENU", "false")
	os.Setenv("DOCKER_CLI_HINTS", "false")

	v, err := setupOutput(time.Minute, "", "docker", "compose", "version", "--short")
	if err != nil {
		return fail("docker compose version with %s: %v\n%s", compose, err, v)
	}
	if !strings.HasPrefix(strings.TrimPrefix(strings.TrimSpace(v), "v"), "2.") {
		return fail("%s reports version %q, want Compose v2", compose, strings.TrimSpace(v))
	}
	fmt.Fprintf(os.Stderr, "e2e: docker compose %s from %s\n", strings.TrimSpace(v), compose)

	if _, err := setupOutput(time.Minute, "", "docker", "image", "inspect", testImage); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %s missing, running scripts/build-images.sh busybox\n", testImage)
		if out, err := setupOutput(5*time.Minute, repoRoot, "scripts/build-images.sh", "busybox"); err != nil {
			return fail("build %s: %v\n%s", testImage, err, out)
		}
	}

	return m.Run()
}

// findCompose returns the Compose v2 binary to install, or "" and why not.
// An explicit AUTOBACKUP_COMPOSE that does not exist is an error everywhere.
func findCompose(ci bool) (path, why string) {
	if p := os.Getenv("AUTOBACKUP_COMPOSE"); p != "" {
		if isExecutable(p) {
			return p, ""
		}
		fmt.Fprintf(os.Stderr, "e2e: FAIL: AUTOBACKUP_COMPOSE=%s is not an executable file\n", p)
		os.Exit(1)
	}
	cache := os.Getenv("AUTOBACKUP_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "autobackup")
		}
	}
	candidates := []string{filepath.Join(cache, "docker-compose")}
	if !ci {
		// On a laptop, a Compose v2 plugin installed system-wide is fine too;
		// CI tests the pinned version only.
		candidates = append(candidates,
			filepath.Join(os.Getenv("HOME"), ".docker", "cli-plugins", "docker-compose"),
			"/usr/local/lib/docker/cli-plugins/docker-compose",
			"/usr/libexec/docker/cli-plugins/docker-compose",
			"/usr/lib/docker/cli-plugins/docker-compose",
		)
	}
	for _, c := range candidates {
		if isExecutable(c) {
			return c, ""
		}
	}
	return "", fmt.Sprintf("no Compose v2 binary: set AUTOBACKUP_COMPOSE, or run 'make compose' (looked at %s)", strings.Join(candidates, ", "))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// setupOutput runs a command for TestMain (no *testing.T yet) and returns
// its combined output.
func setupOutput(timeout time.Duration, dir, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = errors.Join(err, fmt.Errorf("timed out after %s", timeout))
	}
	return string(out), err
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
