package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	autobackup "github.com/docker-autobackup/docker-autobackup"
)

// The harness: a small API over the docker CLI for end-to-end tests. See
// doc.go for how to write a test.

// cmdTimeout bounds every command the harness runs; a hung engine call fails
// the test instead of eating the whole `go test -timeout`.
const cmdTimeout = 5 * time.Minute

const projectLabel = "com.docker.compose.project"

// Project is one Compose project under test, in its own directory.
type Project struct {
	// Name is the Compose project name, unique per test; it is also the
	// base name of Dir, so `docker compose` and `docker autobackup` run in
	// Dir find it without -p, the way a user's would.
	Name string
	// Dir is a private copy of testdata/<TestName>/.
	Dir string
}

// Result is what a command did. Code is the exit code (-1 if it did not
// run or was killed).
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// NewProject copies testdata/<t.Name()>/ (for a subtest without its own
// directory, the top-level test's) into a temporary directory named after a
// fresh project name. t.Cleanup removes everything of the project: `docker
// compose down -v --remove-orphans`, then any container or volume still
// carrying its project label (helpers included); leftovers fail the test.
func NewProject(t *testing.T) *Project {
	t.Helper()
	src := filepath.Join("testdata", filepath.FromSlash(t.Name()))
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		if top, _, ok := strings.Cut(t.Name(), "/"); ok {
			src = filepath.Join("testdata", top)
		}
	}
	if _, err := os.Stat(filepath.Join(src, "compose.yaml")); err != nil {
		t.Fatalf("fixture: %v (want testdata/%s/compose.yaml)", err, t.Name())
	}
	name := projectName(t.Name())
	p := &Project{Name: name, Dir: filepath.Join(t.TempDir(), name)}
	if err := os.CopyFS(p.Dir, os.DirFS(src)); err != nil {
		t.Fatalf("copy fixture %s: %v", src, err)
	}
	t.Cleanup(func() { p.cleanup(t) })
	return p
}

var nameUnsafe = regexp.MustCompile(`[^a-z0-9]+`)

// projectName turns a test name into a valid, unique Compose project name:
// lowercase letters, digits and dashes, starting with a letter.
func projectName(testName string) string {
	base := strings.TrimPrefix(strings.ToLower(testName), "test")
	base = strings.Trim(nameUnsafe.ReplaceAllString(base, "-"), "-")
	if len(base) > 40 {
		base = strings.TrimRight(base[:40], "-")
	}
	var b [3]byte
	rand.Read(b[:])
	return "e2e-" + base + "-" + hex.EncodeToString(b[:])
}

func (p *Project) cleanup(t *testing.T) {
	t.Helper()
	// t.Context() is already canceled when cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if r := runCmd(ctx, p.Dir, nil, "docker", "compose", "-p", p.Name, "down", "-v", "--remove-orphans", "--timeout", "5"); r.Code != 0 {
		t.Logf("cleanup: docker compose down: %v", r)
	}
	filter := "label=" + projectLabel + "=" + p.Name
	for _, kind := range []struct{ list, rm []string }{
		{[]string{"ps", "-aq"}, []string{"rm", "-f", "-v"}},
		{[]string{"volume", "ls", "-q"}, []string{"volume", "rm", "-f"}},
		{[]string{"network", "ls", "-q"}, []string{"network", "rm"}},
	} {
		left := strings.Fields(runCmd(ctx, "", nil, "docker", append(kind.list, "--filter", filter)...).Stdout)
		if len(left) == 0 {
			continue
		}
		t.Logf("cleanup: removing %v left after compose down: %v", kind.list, left)
		if r := runCmd(ctx, "", nil, "docker", append(kind.rm, left...)...); r.Code != 0 {
			t.Errorf("cleanup: project %s: docker %s: %v", p.Name, strings.Join(kind.rm, " "), r)
		}
	}
	// What the plugin keeps between runs on purpose (staging volumes) and
	// any helper it failed to remove carry its own project label, not
	// compose's: remove them too, and fail on helpers, which must never
	// outlive a command.
	ours := "label=io.docker-autobackup.project=" + p.Name
	if left := strings.Fields(runCmd(ctx, "", nil, "docker", "ps", "-aq", "--filter", ours).Stdout); len(left) > 0 {
		t.Errorf("cleanup: helper containers left behind by the plugin: %v", left)
		runCmd(ctx, "", nil, "docker", append([]string{"rm", "-f", "-v"}, left...)...)
	}
	if left := strings.Fields(runCmd(ctx, "", nil, "docker", "volume", "ls", "-q", "--filter", ours).Stdout); len(left) > 0 {
		if r := runCmd(ctx, "", nil, "docker", append([]string{"volume", "rm", "-f"}, left...)...); r.Code != 0 {
			t.Errorf("cleanup: project %s: remove staging volumes: %v", p.Name, r)
		}
	}
}

// Compose runs `docker compose -p <Name> args...` in Dir and returns its
// stdout. A non-zero exit fails the test.
func (p *Project) Compose(t *testing.T, args ...string) string {
	t.Helper()
	full := append([]string{"compose", "-p", p.Name}, args...)
	r := run(t, p.Dir, "docker", full...)
	if r.Code != 0 {
		t.Fatalf("docker %s: %v", strings.Join(full, " "), r)
	}
	return r.Stdout
}

// Autobackup runs `docker autobackup args...` in Dir, through the docker
// CLI like a user. It never fails the test: check Result.Code yourself.
func (p *Project) Autobackup(t *testing.T, args ...string) Result {
	t.Helper()
	return run(t, p.Dir, "docker", append([]string{"autobackup"}, args...)...)
}

// Volume returns the engine's name of the project's named volume vol.
func (p *Project) Volume(vol string) string { return p.Name + "_" + vol }

// Docker runs `docker args...` (with the test DOCKER_CONFIG) in the test's
// working directory. It never fails the test.
func Docker(t *testing.T, args ...string) Result {
	t.Helper()
	return run(t, "", "docker", args...)
}

// PluginPath is the freshly built plugin binary the docker CLI runs, for
// calling it directly (e.g. `docker-cli-plugin-metadata`).
func PluginPath() string { return pluginPath }

// ContainerState returns the state of the service's only container:
// status is "created", "running", "exited", …; health is "starting",
// "healthy", "unhealthy", or "" without a healthcheck. No container, or
// several, fails the test.
func (p *Project) ContainerState(t *testing.T, service string) (status, health string) {
	t.Helper()
	id := p.containerID(t, service)
	r := Docker(t, "inspect", "--format", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", id)
	if r.Code != 0 {
		t.Fatalf("inspect %s container %s: %v", service, id, r)
	}
	status, health, _ = strings.Cut(strings.TrimSpace(r.Stdout), " ")
	return status, health
}

func (p *Project) containerID(t *testing.T, service string) string {
	t.Helper()
	r := Docker(t, "ps", "-aq", "--no-trunc",
		"--filter", "label="+projectLabel+"="+p.Name,
		"--filter", "label=com.docker.compose.service="+service)
	if r.Code != 0 {
		t.Fatalf("list containers of %s: %v", service, r)
	}
	ids := strings.Fields(r.Stdout)
	if len(ids) != 1 {
		t.Fatalf("service %s of project %s has %d containers, want 1: %v", service, p.Name, len(ids), ids)
	}
	return ids[0]
}

// run runs name args... in dir (the test's working directory if "") with the
// process environment plus env, bounded by cmdTimeout and the test's context.
func run(t *testing.T, dir, name string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	start := time.Now()
	r := runCmd(ctx, dir, nil, name, args...)
	t.Logf("$ %s %s  (exit %d, %s)", name, strings.Join(args, " "), r.Code, time.Since(start).Round(time.Millisecond))
	return r
}

func runCmd(ctx context.Context, dir string, env []string, name string, args ...string) Result {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second // don't hang on pipes held by a grandchild
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
	if err != nil && r.Code == 0 {
		r.Code = -1
	}
	if err != nil && r.Code == -1 {
		r.Stderr += fmt.Sprintf("\n[harness: %v]", err)
	}
	return r
}

// --- Events -------------------------------------------------------------------

// Event is one engine event about an object of the project.
type Event struct {
	Time       time.Time // nanosecond resolution, engine clock
	Type       string    // "container", "network", "volume", …
	Action     string    // "create", "start", "kill", "die", "stop", "health_status: healthy", "exec_start: …", …
	Service    string    // com.docker.compose.service, "" if none
	Container  string    // container name (containers only)
	ID         string    // the object's ID
	Attributes map[string]string
}

// Events records the project's engine events from StartEvents until Stop.
type Events struct {
	t       *testing.T
	project string
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	done    chan struct{}
	marker  string

	mu       sync.Mutex
	events   []Event
	sawMark  chan struct{}
	parseErr error
}

// StartEvents starts recording the engine events of the project's objects
// (`docker events --filter label=com.docker.compose.project=<Name>`). It
// records from the moment of the call: events that the engine emits before
// the stream is attached are replayed with --since. Call Stop to get them.
func (p *Project) StartEvents(t *testing.T) *Events {
	t.Helper()
	since := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	e := &Events{
		t: t, project: p.Name, cancel: cancel,
		done:    make(chan struct{}),
		sawMark: make(chan struct{}),
		marker:  "e2e-events-marker-" + p.Name,
	}
	e.cmd = exec.CommandContext(ctx, "docker", "events",
		"--format", "{{json .}}",
		"--since", strconv.FormatFloat(float64(since.UnixNano())/1e9, 'f', 9, 64),
		"--filter", "label="+projectLabel+"="+p.Name)
	e.cmd.WaitDelay = 5 * time.Second
	stdout, err := e.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("docker events: %v", err)
	}
	var stderr bytes.Buffer
	e.cmd.Stderr = &stderr
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("docker events: %v", err)
	}
	go func() {
		defer close(e.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			e.add(sc.Bytes())
		}
		_ = e.cmd.Wait()
		if ctx.Err() == nil { // ended by itself, not by Stop
			e.mu.Lock()
			e.parseErr = errors.Join(e.parseErr, fmt.Errorf("docker events ended early: %s", strings.TrimSpace(stderr.String())))
			e.mu.Unlock()
		}
	}()
	t.Cleanup(func() { // in case the test never calls Stop
		cancel()
		<-e.done
	})
	return e
}

// message is the part of the engine's events.Message we use.
type message struct {
	Type   string `json:"Type"`
	Action string `json:"Action"`
	Actor  struct {
		ID         string            `json:"ID"`
		Attributes map[string]string `json:"Attributes"`
	} `json:"Actor"`
	TimeNano int64 `json:"timeNano"`
}

func (e *Events) add(line []byte) {
	var m message
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := json.Unmarshal(line, &m); err != nil {
		e.parseErr = errors.Join(e.parseErr, fmt.Errorf("parse event %q: %w", line, err))
		return
	}
	attrs := m.Actor.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	if attrs["name"] == e.marker {
		if m.Action == "create" {
			select {
			case <-e.sawMark:
			default:
				close(e.sawMark)
			}
		}
		return
	}
	ev := Event{
		Time:       time.Unix(0, m.TimeNano),
		Type:       m.Type,
		Action:     m.Action,
		Service:    attrs["com.docker.compose.service"],
		ID:         m.Actor.ID,
		Attributes: attrs,
	}
	if m.Type == "container" {
		ev.Container = attrs["name"]
	}
	e.events = append(e.events, ev)
}

// Stop ends the recording and returns the events in engine time order.
//
// So that no event still in flight is lost, Stop first creates (and then
// removes) a marker container carrying the project label and waits until its
// event arrives: every event before it has been received by then. The
// marker's own events are not returned.
func (e *Events) Stop() []Event {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := runCmd(ctx, "", nil, "docker", "create", "--name", e.marker,
		"--label", projectLabel+"="+e.project, "--label", "com.docker.autobackup.e2e.marker=true",
		testImage, "true")
	if r.Code != 0 {
		t.Errorf("events: create marker container: %v", r)
	} else {
		defer runCmd(ctx, "", nil, "docker", "rm", "-f", e.marker)
		select {
		case <-e.sawMark:
		case <-e.done:
		case <-time.After(30 * time.Second):
			t.Errorf("events: marker event not received within 30s; events may be missing")
		}
	}
	e.cancel()
	<-e.done

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.parseErr != nil {
		t.Errorf("events: %v", e.parseErr)
	}
	evs := slices.Clone(e.events)
	slices.SortStableFunc(evs, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return evs
}

// LifecycleActions are the container actions that show stop/start order.
var LifecycleActions = []string{"stop", "die", "start", "health_status: healthy"}

// Lifecycle returns "service action" for each container event whose action
// is one of actions (LifecycleActions if none are given), in time order:
// e.g. ["web stop", "app stop", "db stop", "db start", "db health_status: healthy", …].
func Lifecycle(evs []Event, actions ...string) []string {
	if len(actions) == 0 {
		actions = LifecycleActions
	}
	var out []string
	for _, ev := range evs {
		if ev.Type == "container" && slices.Contains(actions, ev.Action) {
			out = append(out, ev.Service+" "+ev.Action)
		}
	}
	return out
}

// Order returns the services in the order of their first container event
// with the given action: Order(evs, "stop") is the order services stopped.
// Services stopped concurrently may appear in any order among themselves;
// compare dependent pairs with Before instead of whole slices.
func Order(evs []Event, action string) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == "container" && ev.Action == action && ev.Service != "" && !slices.Contains(out, ev.Service) {
			out = append(out, ev.Service)
		}
	}
	return out
}

// Find returns the first container event of service with action.
func Find(evs []Event, service, action string) (Event, bool) {
	for _, ev := range evs {
		if ev.Type == "container" && ev.Service == service && ev.Action == action {
			return ev, true
		}
	}
	return Event{}, false
}

// Before reports whether service a's first action aAction happened strictly
// before service b's first bAction; false if either is missing.
func Before(evs []Event, a, aAction, b, bAction string) bool {
	ea, okA := Find(evs, a, aAction)
	eb, okB := Find(evs, b, bAction)
	return okA && okB && ea.Time.Before(eb.Time)
}

// --- The harness's own smoke test -------------------------------------------

// TestHarnessSmoke checks the harness itself against the engine and Compose:
// a project comes up healthy, events of `compose stop` / `compose start` are
// recorded in dependency order, and the docker CLI finds our plugin.
func TestHarnessSmoke(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")

	for _, svc := range []string{"store", "app"} {
		if status, health := p.ContainerState(t, svc); status != "running" || health != "healthy" {
			t.Errorf("%s after up --wait: status %q, health %q; want running, healthy", svc, status, health)
		}
	}
	if r := Docker(t, "volume", "inspect", p.Volume("data")); r.Code != 0 {
		t.Errorf("volume %s: %v", p.Volume("data"), r)
	}

	ev := p.StartEvents(t)
	p.Compose(t, "stop")
	p.Compose(t, "start")
	evs := ev.Stop()
	t.Logf("lifecycle: %v", Lifecycle(evs))

	// Compose stops dependents first and starts app only once store is healthy.
	for _, c := range []struct{ a, aAction, b, bAction string }{
		{"app", "stop", "store", "stop"},
		{"store", "stop", "store", "start"},
		{"store", "health_status: healthy", "app", "start"},
	} {
		if !Before(evs, c.a, c.aAction, c.b, c.bAction) {
			t.Errorf("want %s %q before %s %q; lifecycle: %v", c.a, c.aAction, c.b, c.bAction, Lifecycle(evs))
		}
	}
	if got, want := Order(evs, "stop"), []string{"app", "store"}; !slices.Equal(got, want) {
		t.Errorf("Order(stop) = %v, want %v", got, want)
	}
	for _, e := range evs {
		if e.Attributes["name"] == ev.marker {
			t.Errorf("marker event leaked into the recording: %+v", e)
		}
	}

	// The docker CLI discovers the plugin in the test DOCKER_CONFIG and
	// reads the metadata we ship.
	r := Docker(t, "info", "--format", "{{json .ClientInfo.Plugins}}")
	if r.Code != 0 {
		t.Fatalf("docker info: %v", r)
	}
	var plugins []struct{ Name, Version, Path, Err string }
	if err := json.Unmarshal([]byte(r.Stdout), &plugins); err != nil {
		t.Fatalf("docker info plugins: %v\n%s", err, r.Stdout)
	}
	want := autobackup.Metadata()
	i := slices.IndexFunc(plugins, func(pl struct{ Name, Version, Path, Err string }) bool { return pl.Name == "autobackup" })
	switch {
	case i < 0:
		t.Errorf("docker info lists no autobackup plugin: %s", r.Stdout)
	case plugins[i].Err != "":
		t.Errorf("docker reports the plugin broken: %s", plugins[i].Err)
	case plugins[i].Path != PluginPath() || plugins[i].Version != want.Version:
		t.Errorf("plugin = %+v, want path %s, version %s", plugins[i], PluginPath(), want.Version)
	}

	// The metadata subcommand is called on the binary, as the CLI does;
	// `docker autobackup docker-cli-plugin-metadata` would reach our root
	// command as an unknown subcommand.
	meta := runCmd(t.Context(), p.Dir, nil, PluginPath(), "docker-cli-plugin-metadata")
	if meta.Code != 0 {
		t.Fatalf("docker-autobackup docker-cli-plugin-metadata: %v", meta)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(meta.Stdout), &got); err != nil {
		t.Fatalf("metadata is not JSON: %v\n%s", err, meta.Stdout)
	}
	if got["SchemaVersion"] != want.SchemaVersion || got["Vendor"] != want.Vendor || got["Version"] != want.Version {
		t.Errorf("metadata = %v, want %+v", got, want)
	}

	if r := p.Autobackup(t, "--help"); r.Code != 0 || !strings.Contains(r.Stdout, "autobackup") {
		t.Errorf("docker autobackup --help: %v", r)
	}
}
