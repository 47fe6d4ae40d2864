package compose_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/enginetest"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

type dependency struct{ name, condition string }

func started(name string) dependency { return dependency{name, types.ServiceConditionStarted} }
func healthy(name string) dependency { return dependency{name, types.ServiceConditionHealthy} }
func completed(name string) dependency {
	return dependency{name, types.ServiceConditionCompletedSuccessfully}
}

func service(name string, deps ...dependency) types.ServiceConfig {
	s := types.ServiceConfig{Name: name}
	if len(deps) > 0 {
		s.DependsOn = types.DependsOnConfig{}
		for _, d := range deps {
			s.DependsOn[d.name] = types.ServiceDependency{Condition: d.condition, Required: true}
		}
	}
	return s
}

func project(svcs ...types.ServiceConfig) *types.Project {
	p := &types.Project{Name: "proj", Services: types.Services{}}
	for _, s := range svcs {
		p.Services[s.Name] = s
	}
	return p
}

// fastTimeouts keep failing tests short; Poll is small so the order in the
// call log is not an artefact of long sleeps.
var fastTimeouts = compose.Timeouts{Stop: time.Second, Start: time.Second, Health: time.Second, Poll: 5 * time.Millisecond}

func newLifecycle(f *enginetest.Fake, p *types.Project) (*compose.Lifecycle, *progress.Recorder) {
	r := &progress.Recorder{}
	return &compose.Lifecycle{Engine: f, Project: p, Timeouts: fastTimeouts, Reporter: r}, r
}

// stop takes the container list like the caller does and stops every
// service; it fails the test on an error.
func stop(t *testing.T, l *compose.Lifecycle, f *enginetest.Fake) *compose.Stopped {
	t.Helper()
	st, err := stopErr(t, l, f)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	return st
}

func stopErr(t *testing.T, l *compose.Lifecycle, f *enginetest.Fake) (*compose.Stopped, error) {
	t.Helper()
	cs, err := f.Containers(t.Context(), l.Project.Name)
	if err != nil {
		t.Fatalf("Containers: %v", err)
	}
	st, err := l.Stop(t.Context(), cs, nil)
	if st == nil {
		t.Fatal("Stop returned a nil *Stopped")
	}
	return st, err
}

func restart(t *testing.T, st *compose.Stopped) {
	t.Helper()
	if err := st.Restart(t.Context()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
}

// index returns the position of the first call (op, container) in calls,
// or -1.
func index(calls []enginetest.Call, op, container string) int {
	return slices.IndexFunc(calls, func(c enginetest.Call) bool { return c.Op == op && c.ID == container })
}

// assertBefore checks that call (op1, c1) comes before call (op2, c2).
func assertBefore(t *testing.T, calls []enginetest.Call, op1, c1, op2, c2 string) {
	t.Helper()
	i, j := index(calls, op1, c1), index(calls, op2, c2)
	if i < 0 || j < 0 || i >= j {
		t.Errorf("%s %s (call %d) should come before %s %s (call %d); calls: %v", op1, c1, i, op2, c2, j, opList(calls))
	}
}

func opList(calls []enginetest.Call) []string {
	var out []string
	for _, c := range calls {
		if c.Op == "containers" {
			continue
		}
		out = append(out, c.Op+" "+c.ID+" "+c.Detail)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func assertStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func restartError(t *testing.T, err error) *compose.RestartError {
	t.Helper()
	var re *compose.RestartError
	if !errors.As(err, &re) {
		t.Fatalf("Restart: got %v, want a *RestartError", err)
	}
	return re
}

func TestStopAndRestartOrder(t *testing.T) {
	tests := []struct {
		name    string
		project *types.Project
		// before lists pairs (x, y): x is stopped before y starts stopping,
		// and y is started before x.
		before [][2]string
	}{
		{
			name:    "chain",
			project: project(service("web", started("app")), service("app", started("db")), service("db")),
			before:  [][2]string{{"web", "app"}, {"app", "db"}},
		},
		{
			name: "diamond",
			project: project(service("a", started("b"), started("c")),
				service("b", started("d")), service("c", started("d")), service("d")),
			before: [][2]string{{"a", "b"}, {"a", "c"}, {"b", "d"}, {"c", "d"}},
		},
		{
			name: "healthy conditions",
			project: project(service("web", healthy("app")), service("app", healthy("db")),
				service("db")),
			before: [][2]string{{"web", "app"}, {"app", "db"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := enginetest.New()
			for name := range tt.project.Services {
				c := ctr(name, 1, "running")
				c.Health = "healthy"
				f.AddContainer(c)
			}
			l, _ := newLifecycle(f, tt.project)
			st := stop(t, l, f)
			restart(t, st)

			calls := f.Calls()
			for _, p := range tt.before {
				x, y := p[0]+"-1", p[1]+"-1"
				assertBefore(t, calls, "stopped", x, "stop", y)
				assertBefore(t, calls, "start", y, "start", x)
			}
			var all []string
			for name := range tt.project.Services {
				all = append(all, name+"-1")
			}
			assertStrings(t, "stopped", sorted(f.Ops("stop")), sorted(all))
			assertStrings(t, "started", sorted(f.Ops("start")), sorted(all))
			assertStrings(t, "Stopped.Services", st.Services(), slices.Sorted(maps.Keys(tt.project.Services)))
			for _, id := range all {
				if got := f.State(id); got != "running" {
					t.Errorf("%s after Restart: got state %q, want running", id, got)
				}
			}
		})
	}
}

func TestStopChainExactOrder(t *testing.T) {
	f := enginetest.New(ctr("web", 1, "running"), ctr("app", 1, "running"), ctr("db", 1, "running"))
	l, _ := newLifecycle(f, project(service("web", started("app")), service("app", started("db")), service("db")))
	restart(t, stop(t, l, f))
	assertStrings(t, "stop order", f.Ops("stop"), []string{"web-1", "app-1", "db-1"})
	assertStrings(t, "start order", f.Ops("start"), []string{"db-1", "app-1", "web-1"})
}

// overlapping reports whether the stops of a and b ran at the same time:
// both began before either returned.
func overlapping(calls []enginetest.Call, a, b string) bool {
	sa, sb := index(calls, "stop", a), index(calls, "stop", b)
	ea, eb := index(calls, "stopped", a), index(calls, "stopped", b)
	return sa >= 0 && sb >= 0 && sa < eb && sb < ea
}

func TestStopInParallel(t *testing.T) {
	tests := []struct {
		name       string
		containers []*enginetest.Container
		project    *types.Project
		a, b       string
	}{
		{
			name:       "independent services",
			containers: []*enginetest.Container{ctr("one", 1, "running"), ctr("two", 1, "running")},
			project:    project(service("one"), service("two")),
			a:          "one-1", b: "two-1",
		},
		{
			name:       "replicas of one service",
			containers: []*enginetest.Container{ctr("worker", 1, "running"), ctr("worker", 2, "running")},
			project:    project(service("worker")),
			a:          "worker-1", b: "worker-2",
		},
		{
			name:       "siblings of a diamond",
			containers: []*enginetest.Container{ctr("a", 1, "running"), ctr("b", 1, "running"), ctr("c", 1, "running"), ctr("d", 1, "running")},
			project: project(service("a", started("b"), started("c")),
				service("b", started("d")), service("c", started("d")), service("d")),
			a: "b-1", b: "c-1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := enginetest.New()
			for _, c := range tt.containers {
				c.StopDelay = 50 * time.Millisecond
				f.AddContainer(c)
			}
			l, _ := newLifecycle(f, tt.project)
			restart(t, stop(t, l, f))
			if calls := f.Calls(); !overlapping(calls, tt.a, tt.b) {
				t.Errorf("stops of %s and %s did not overlap; calls: %v", tt.a, tt.b, opList(calls))
			}
		})
	}
}

func TestStopLeavesAloneWhatIsNotRunning(t *testing.T) {
	oneOff := ctr("app", 9, "running")
	oneOff.OneOff = true
	f := enginetest.New(
		ctr("app", 1, "running"),
		oneOff,                     // docker compose run app
		ctr("worker", 1, "exited"), // stopped by the user
		ctr("cron", 1, "created"),  // never started
		ctr("app", 2, "exited"),    // a stopped replica
	)
	l, r := newLifecycle(f, project(service("app"), service("worker"), service("cron")))
	st := stop(t, l, f)
	restart(t, st)

	assertStrings(t, "stopped", f.Ops("stop"), []string{"app-1"})
	assertStrings(t, "started", f.Ops("start"), []string{"app-1"})
	assertStrings(t, "Stopped.Services", st.Services(), []string{"app"})
	for id, want := range map[string]string{"app-9": "running", "worker-1": "exited", "cron-1": "created", "app-2": "exited"} {
		if got := f.State(id); got != want {
			t.Errorf("%s: got state %q, want %q", id, got, want)
		}
	}
	var skipped []string
	for _, e := range r.Of("service-skipped") {
		skipped = append(skipped, e.Service)
	}
	assertStrings(t, "skipped services", sorted(skipped), []string{"cron", "worker"})
}

func TestStopNothingRunning(t *testing.T) {
	f := enginetest.New(ctr("db", 1, "exited"))
	l, _ := newLifecycle(f, project(service("db")))
	st := stop(t, l, f)
	restart(t, st)
	if got := f.Calls(); len(opList(got)) != 0 {
		t.Errorf("engine calls: got %v, want none", opList(got))
	}
	if !st.FirstStop().IsZero() {
		t.Errorf("FirstStop: got %v, want zero", st.FirstStop())
	}
}

func TestStopTimeoutWarnsAndContinues(t *testing.T) {
	grace := types.Duration(20 * time.Millisecond)
	app := service("app", started("db"))
	app.StopGracePeriod = &grace
	slow := ctr("app", 1, "running")
	slow.StopDelay = 10 * time.Second // killed after the grace period
	f := enginetest.New(slow, ctr("db", 1, "running"))
	l, r := newLifecycle(f, project(app, service("db")))

	st := stop(t, l, f)
	assertStrings(t, "stopped", f.Ops("stopped"), []string{"app-1", "db-1"})
	warnings := r.Of("warning")
	if len(warnings) != 1 || warnings[0].Service != "app" || warnings[0].Container != "proj-app-1" {
		t.Fatalf("warnings: got %+v, want one for app / proj-app-1", warnings)
	}
	if !strings.Contains(warnings[0].Message, "did not stop within 20ms") {
		t.Errorf("warning message: got %q", warnings[0].Message)
	}
	restart(t, st)
}

func TestStopTimeout(t *testing.T) {
	grace := types.Duration(7 * time.Second)
	zero := types.Duration(0)
	tests := []struct {
		name     string
		grace    *types.Duration
		timeouts compose.Timeouts
		want     time.Duration
	}{
		{"stop_grace_period", &grace, compose.Timeouts{Stop: 3 * time.Second}, 7 * time.Second},
		{"Timeouts.Stop", nil, compose.Timeouts{Stop: 3 * time.Second}, 3 * time.Second},
		{"zero stop_grace_period", &zero, compose.Timeouts{Stop: 3 * time.Second}, 3 * time.Second},
		{"default", nil, compose.Timeouts{}, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := service("db")
			svc.StopGracePeriod = tt.grace
			f := enginetest.New(ctr("db", 1, "running"))
			l, _ := newLifecycle(f, project(svc))
			l.Timeouts = tt.timeouts
			l.Timeouts.Poll = 5 * time.Millisecond
			st := stop(t, l, f)
			if got := f.StopTimeout("db-1"); got != tt.want {
				t.Errorf("timeout passed to StopContainer: got %v, want %v", got, tt.want)
			}
			if got := l.StopTimeout(svc); got != tt.want {
				t.Errorf("StopTimeout: got %v, want %v", got, tt.want)
			}
			restart(t, st)
		})
	}
}

var errBoom = errors.New("boom")

func TestStopFailureAbortsAndRestartsWhatWasStopped(t *testing.T) {
	chain := project(service("web", started("app")), service("app", started("db")), service("db"))
	tests := []struct {
		name  string
		setup func(f *enginetest.Fake, l *compose.Lifecycle)
		// stopCalled are the containers StopContainer was called for.
		stopCalled []string
	}{
		{
			name: "StopContainer error",
			setup: func(f *enginetest.Fake, _ *compose.Lifecycle) {
				f.StopFn = func(ctx context.Context, id string, timeout time.Duration) error {
					if id == "app-1" {
						return errBoom
					}
					return f.DefaultStop(ctx, id, timeout)
				}
			},
			stopCalled: []string{"web-1", "app-1"},
		},
		{
			name: "BeforeStop hook error",
			setup: func(_ *enginetest.Fake, l *compose.Lifecycle) {
				l.Hooks.BeforeStop = func(_ context.Context, svc types.ServiceConfig, c engine.Container) error {
					if svc.Name == "app" {
						return errBoom
					}
					return nil
				}
			},
			stopCalled: []string{"web-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Run a few times: the walk schedules the next service
			// concurrently with the failure.
			for range 20 {
				f := enginetest.New(ctr("web", 1, "running"), ctr("app", 1, "running"), ctr("db", 1, "running"))
				l, _ := newLifecycle(f, chain)
				tt.setup(f, l)
				st, err := stopErr(t, l, f)
				if !errors.Is(err, errBoom) {
					t.Fatalf("Stop: got %v, want %v", err, errBoom)
				}
				if !strings.HasPrefix(err.Error(), "stop app") {
					t.Errorf("Stop error: got %q, want it to start with \"stop app\"", err)
				}
				assertStrings(t, "StopContainer calls", f.Ops("stop"), tt.stopCalled)
				if got := f.State("db-1"); got != "running" {
					t.Errorf("db-1 after a failed stop of its dependent: got %q, want running", got)
				}
				restart(t, st)
				// Whatever StopContainer was called for is started again,
				// in dependency order; db was never touched.
				want := slices.Clone(tt.stopCalled)
				slices.Reverse(want)
				assertStrings(t, "started", f.Ops("start"), want)
				for _, id := range []string{"web-1", "app-1", "db-1"} {
					if got := f.State(id); got != "running" {
						t.Errorf("%s after Restart: got %q, want running", id, got)
					}
				}
			}
		})
	}
}

func TestRestartWaitsForHealthyDependency(t *testing.T) {
	db := ctr("db", 1, "running")
	db.Health = "healthy"
	db.HealthyAfter = 3
	f := enginetest.New(db, ctr("app", 1, "running"))
	l, r := newLifecycle(f, project(service("app", healthy("db")), service("db")))
	restart(t, stop(t, l, f))

	calls := f.Calls()
	healthyAt := slices.IndexFunc(calls, func(c enginetest.Call) bool {
		return c.Op == "inspect" && c.ID == "db-1" && c.Detail == "running/healthy"
	})
	startAt := index(calls, "start", "app-1")
	if healthyAt < 0 || startAt < healthyAt {
		t.Errorf("app started at call %d, db healthy at call %d; calls: %v", startAt, healthyAt, opList(calls))
	}
	var back []string
	for _, e := range r.Of("service-healthy") {
		back = append(back, e.Service)
	}
	assertStrings(t, "service-healthy events", sorted(back), []string{"app", "db"})
}

func TestRestartCompletedDependency(t *testing.T) {
	tests := []struct {
		name     string
		exitCode int
		failed   []string
	}{
		{"exited 0", 0, nil},
		{"exited 1", 1, []string{"app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			migrate := ctr("migrate", 1, "exited")
			f := enginetest.New(migrate, ctr("app", 1, "running"))
			f.SetStatus("migrate-1", engine.Status{State: "exited", ExitCode: tt.exitCode})
			l, _ := newLifecycle(f, project(service("app", completed("migrate")), service("migrate")))
			err := stop(t, l, f).Restart(t.Context())
			if tt.failed == nil {
				if err != nil {
					t.Fatalf("Restart: %v", err)
				}
				assertStrings(t, "started", f.Ops("start"), []string{"app-1"})
				return
			}
			assertStrings(t, "failed", restartError(t, err).Services(), tt.failed)
			assertStrings(t, "started", f.Ops("start"), nil)
		})
	}
}

func TestRestartFailures(t *testing.T) {
	tests := []struct {
		name    string
		app, db func(c *enginetest.Container)
		health  time.Duration
		startFn func(f *enginetest.Fake) func(context.Context, string) error
		failed  []string
		// appStarted says whether app's container is started at all.
		appStarted bool
		message    []string // substrings of the error
	}{
		{
			name:       "unhealthy dependency",
			db:         func(c *enginetest.Container) { c.Health = "unhealthy" },
			failed:     []string{"app", "db"},
			message:    []string{"app: not started: dependency db: proj-db-1 is unhealthy (last probe: probe failed)", "db: proj-db-1 is unhealthy"},
			appStarted: false,
		},
		{
			name:       "dependency never healthy",
			db:         func(c *enginetest.Container) { c.Health = "starting" },
			health:     60 * time.Millisecond,
			failed:     []string{"app", "db"},
			message:    []string{"proj-db-1 is not healthy after"},
			appStarted: false,
		},
		{
			name:       "dependent never healthy",
			app:        func(c *enginetest.Container) { c.Health = "starting" },
			health:     60 * time.Millisecond,
			failed:     []string{"app"},
			message:    []string{"app: proj-app-1 is not healthy after"},
			appStarted: true,
		},
		{
			name:       "exits right after start",
			app:        func(c *enginetest.Container) { c.ExitAfter, c.ExitCode = 1, 3 },
			failed:     []string{"app"},
			message:    []string{"app: start proj-app-1: proj-app-1 exited with code 3 right after start"},
			appStarted: true,
		},
		{
			name: "exits while its healthcheck starts",
			app: func(c *enginetest.Container) {
				c.Health, c.HealthyAfter = "healthy", 10
				c.ExitAfter, c.ExitCode = 3, 1
			},
			failed:     []string{"app"},
			message:    []string{"proj-app-1 exited with code 1"},
			appStarted: true,
		},
		{
			name:       "dependency exits",
			db:         func(c *enginetest.Container) { c.ExitAfter, c.ExitCode = 1, 2 },
			failed:     []string{"app", "db"},
			message:    []string{"app: not started: dependency db: did not come back"},
			appStarted: false,
		},
		{
			name: "start error",
			startFn: func(f *enginetest.Fake) func(context.Context, string) error {
				return func(ctx context.Context, id string) error {
					if id == "db-1" {
						return errBoom
					}
					return f.DefaultStart(ctx, id)
				}
			},
			failed:     []string{"app", "db"},
			message:    []string{"db: start proj-db-1: boom"},
			appStarted: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, db := ctr("app", 1, "running"), ctr("db", 1, "running")
			if tt.app != nil {
				tt.app(app)
			}
			if tt.db != nil {
				tt.db(db)
			}
			f := enginetest.New(app, db)
			if tt.startFn != nil {
				f.StartFn = tt.startFn(f)
			}
			l, _ := newLifecycle(f, project(service("app", healthy("db")), service("db")))
			if tt.health > 0 {
				l.Timeouts.Health = tt.health
			}
			st := stop(t, l, f)
			err := st.Restart(t.Context())
			re := restartError(t, err)
			assertStrings(t, "failed services", re.Services(), tt.failed)
			for _, m := range tt.message {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
			if got := index(f.Calls(), "start", "app-1") >= 0; got != tt.appStarted {
				t.Errorf("app started: got %v, want %v", got, tt.appStarted)
			}
		})
	}
}

func TestRestartAfterContextCancelled(t *testing.T) {
	f := enginetest.New(ctr("app", 1, "running"), ctr("db", 1, "running"))
	l, _ := newLifecycle(f, project(service("app", started("db")), service("db")))
	st := stop(t, l, f)

	ctx, cancel := context.WithCancel(t.Context())
	cancel() // Ctrl-C during the backup
	if err := st.Restart(ctx); err != nil {
		t.Fatalf("Restart with a cancelled context: %v", err)
	}
	assertStrings(t, "started", f.Ops("start"), []string{"db-1", "app-1"})
	for _, id := range []string{"app-1", "db-1"} {
		if got := f.State(id); got != "running" {
			t.Errorf("%s: got %q, want running", id, got)
		}
	}
}

func TestStopCancelledContext(t *testing.T) {
	f := enginetest.New(ctr("app", 1, "running"))
	l, _ := newLifecycle(f, project(service("app")))
	cs, _ := f.Containers(t.Context(), "proj")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	st, err := l.Stop(ctx, cs, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Stop: got %v, want context.Canceled", err)
	}
	restart(t, st)
	if got := f.State("app-1"); got != "running" {
		t.Errorf("app-1: got %q, want running", got)
	}
}

func TestRestartTwiceRestartsOnce(t *testing.T) {
	f := enginetest.New(ctr("app", 1, "running"))
	l, _ := newLifecycle(f, project(service("app")))
	st := stop(t, l, f)
	restart(t, st)
	restart(t, st)
	assertStrings(t, "started", f.Ops("start"), []string{"app-1"})
}

func TestKeep(t *testing.T) {
	db := ctr("db", 1, "running")
	db.Health = "healthy"
	f := enginetest.New(ctr("app", 1, "running"), db)
	l, r := newLifecycle(f, project(service("app", healthy("db")), service("db")))
	l.Keep = map[string]string{"db": "x-autobackup stop: false"}
	st := stop(t, l, f)
	restart(t, st)

	assertStrings(t, "stopped", f.Ops("stop"), []string{"app-1"})
	assertStrings(t, "started", f.Ops("start"), []string{"app-1"})
	skipped := r.Of("service-skipped")
	if len(skipped) != 1 || skipped[0].Service != "db" || !strings.Contains(skipped[0].Message, "x-autobackup stop: false") {
		t.Errorf("skipped events: got %+v, want db with the reason", skipped)
	}
}

func TestStopSelectedServices(t *testing.T) {
	f := enginetest.New(ctr("app", 1, "running"), ctr("db", 1, "running"), ctr("cache", 1, "running"))
	l, _ := newLifecycle(f, project(service("app", started("db")), service("db"), service("cache")))
	cs, _ := f.Containers(t.Context(), "proj")
	st, err := l.Stop(t.Context(), cs, []string{"db", "cache"})
	if err != nil {
		t.Fatal(err)
	}
	assertStrings(t, "stopped", sorted(f.Ops("stop")), []string{"cache-1", "db-1"})
	assertStrings(t, "Stopped.Services", st.Services(), []string{"cache", "db"})
	restart(t, st)
	assertStrings(t, "started", sorted(f.Ops("start")), []string{"cache-1", "db-1"})
}

func TestAfterStartHook(t *testing.T) {
	f := enginetest.New(ctr("app", 1, "running"), ctr("db", 1, "running"))
	l, _ := newLifecycle(f, project(service("app", started("db")), service("db")))
	l.Hooks.AfterStart = func(_ context.Context, svc types.ServiceConfig, _ engine.Container) error {
		if svc.Name == "app" {
			return errBoom
		}
		return nil
	}
	err := stop(t, l, f).Restart(t.Context())
	re := restartError(t, err)
	assertStrings(t, "failed", re.Services(), []string{"app"})
	if !errors.Is(re.Failed["app"], errBoom) {
		t.Errorf("app failure: got %v, want %v", re.Failed["app"], errBoom)
	}
}
