package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/docker/docker/client"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/docker"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/enginetest"
)

// TestEngineConformance runs the engine conformance suite against the real
// engine, through the same client and retry wrapper the plugin uses: what
// the shared fake promises, the engine does.
func TestEngineConformance(t *testing.T) {
	api, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	e := engine.WithRetry(docker.New(api, "conformance"), engine.DefaultRetry(docker.Transient))
	enginetest.Run(t, &realHarness{e: e, prefix: fmt.Sprintf("abconf%d", os.Getpid())})
}

// realHarness prepares containers and volumes with the docker CLI, the
// way compose labels them.
type realHarness struct {
	e      engine.Engine
	prefix string
	n      atomic.Int64
}

func (h *realHarness) Engine() engine.Engine { return h.e }
func (h *realHarness) Image() string         { return testImage }
func (h *realHarness) Unique(prefix string) string {
	return fmt.Sprintf("%s%s%d", h.prefix, prefix, h.n.Add(1))
}

func (h *realHarness) RemoveVolume(name string) {
	runCmd(context.Background(), "", nil, "docker", "volume", "rm", "-f", name)
}

func (h *realHarness) AddService(t *testing.T, project, svc string, volumes []string, healthcheck bool) string {
	t.Helper()
	args := []string{"run", "-d", "--name", project + "-" + svc + "-1",
		"--label", engine.LabelComposeProject + "=" + project,
		"--label", engine.LabelComposeService + "=" + svc,
		"--label", engine.LabelComposeNumber + "=1",
		"--label", engine.LabelComposeOneOff + "=False",
	}
	for _, v := range volumes {
		args = append(args, "-v", v+":/data/"+v)
	}
	if healthcheck {
		args = append(args, "--health-cmd", "true", "--health-interval", "1s", "--health-start-period", "0s")
	}
	args = append(args, testImage, "sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait")
	r := Docker(t, args...)
	if r.Code != 0 {
		t.Fatalf("docker run: %s", r)
	}
	id := strings.TrimSpace(r.Stdout)
	t.Cleanup(func() { Docker(t, "rm", "-f", id) })
	return id
}

func (h *realHarness) AddVolume(t *testing.T, name string, files map[string]string) {
	t.Helper()
	if r := Docker(t, "volume", "create", name); r.Code != 0 {
		t.Fatalf("docker volume create: %s", r)
	}
	t.Cleanup(func() { Docker(t, "volume", "rm", "-f", name) })
	if len(files) == 0 {
		return
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var script strings.Builder
	for _, n := range names {
		fmt.Fprintf(&script, "printf '%%s' '%s' > '/v/%s' && ", files[n], n)
	}
	script.WriteString("true")
	if r := Docker(t, "run", "--rm", "-v", name+":/v", testImage, "sh", "-c", script.String()); r.Code != 0 {
		t.Fatalf("fill volume %s: %s", name, r)
	}
}
