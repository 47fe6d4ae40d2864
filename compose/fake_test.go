package compose_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/docker-autobackup/docker-autobackup/compose"
	"github.com/docker-autobackup/docker-autobackup/engine"
	"github.com/docker-autobackup/docker-autobackup/progress"
)

// call is one engine call as the fake saw it. Stops are recorded twice:
// "stop" when the call begins and "stopped" when it returns, so tests can
// compare intervals. Inspects carry what they reported in Detail
// ("running/healthy", "exited/1", …).
type call struct {
	Op        string // "containers", "stop", "stopped", "start", "inspect"
	Container string // service-number, e.g. "db-1"
	Detail    string
	Time      time.Time
}

// fakeContainer is one simulated container. Its behaviour after a start is
// scripted by the fields below; the zero value starts cleanly, has no
// healthcheck and stops at once.
type fakeContainer struct {
	engine.Container

	// StopDelay is how long the container takes to exit; the fake engine
	// kills it when the stop timeout is shorter.
	StopDelay time.Duration
	// Health is what the healthcheck settles on after a start: "" for no
	// healthcheck, "healthy", "unhealthy", or "starting" for never.
	Health string
	// HealthyAfter is how many inspects after a start report "starting"
	// before Health is reached.
	HealthyAfter int
	// ExitAfter, when > 0, makes the container exit with ExitCode on the
	// ExitAfter-th inspect after a start.
	ExitAfter int
	ExitCode  int

	status   engine.Status
	inspects int // since the last start
}

// fakeEngine is a compose.Engine over fakeContainers. The …Fn fields, when
// set, replace the simulated behaviour of one method (the call is still
// recorded).
type fakeEngine struct {
	ContainersFn func(ctx context.Context, project string) ([]engine.Container, error)
	StopFn       func(ctx context.Context, id string, timeout time.Duration) error
	StartFn      func(ctx context.Context, id string) error
	InspectFn    func(ctx context.Context, id string) (engine.Status, error)

	mu         sync.Mutex
	calls      []call
	containers []*fakeContainer
	timeouts   map[string]time.Duration // last stop timeout per container
}

var _ compose.Engine = (*fakeEngine)(nil)

func newFakeEngine(cs ...*fakeContainer) *fakeEngine {
	f := &fakeEngine{timeouts: map[string]time.Duration{}}
	for _, c := range cs {
		f.add(c)
	}
	return f
}

// ctr returns a fake container of service svc, number n, in state
// ("running", "exited", …). Running containers start out healthy where
// they are given a healthcheck.
func ctr(svc string, n int, state string) *fakeContainer {
	id := fmt.Sprintf("%s-%d", svc, n)
	return &fakeContainer{Container: engine.Container{
		ID: id, Name: "proj-" + id, Service: svc, Number: n, State: state,
	}}
}

func (f *fakeEngine) add(c *fakeContainer) {
	c.status = engine.Status{State: c.State}
	if c.Health != "" {
		c.status.HasHealthcheck = true
		if c.State == "running" {
			c.status.Health = "healthy"
		}
	}
	f.containers = append(f.containers, c)
}

func (f *fakeEngine) find(id string) *fakeContainer {
	for _, c := range f.containers {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func (f *fakeEngine) record(op, id, detail string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{Op: op, Container: id, Detail: detail, Time: time.Now()})
}

// Calls returns a copy of the call log.
func (f *fakeEngine) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// ops lists, in order, the containers of the calls with operation op.
func (f *fakeEngine) ops(op string) []string {
	var out []string
	for _, c := range f.Calls() {
		if c.Op == op {
			out = append(out, c.Container)
		}
	}
	return out
}

// state returns the current state of container id.
func (f *fakeEngine) state(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.find(id); c != nil {
		return c.status.State
	}
	return ""
}

// stopTimeout returns the timeout of the last stop of container id.
func (f *fakeEngine) stopTimeout(id string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timeouts[id]
}

func (f *fakeEngine) Containers(ctx context.Context, project string) ([]engine.Container, error) {
	f.record("containers", "", project)
	if f.ContainersFn != nil {
		return f.ContainersFn(ctx, project)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]engine.Container, 0, len(f.containers))
	for _, c := range f.containers {
		cc := c.Container
		cc.State = c.status.State
		out = append(out, cc)
	}
	return out, nil
}

func (f *fakeEngine) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	f.record("stop", id, timeout.String())
	defer f.record("stopped", id, "")
	f.mu.Lock()
	f.timeouts[id] = timeout
	f.mu.Unlock()
	if f.StopFn != nil {
		return f.StopFn(ctx, id, timeout)
	}
	return f.defaultStop(ctx, id, timeout)
}

// defaultStop is the simulated stop, for StopFn to fall back on.
func (f *fakeEngine) defaultStop(ctx context.Context, id string, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	c := f.find(id)
	if c == nil {
		f.mu.Unlock()
		return fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
	}
	delay, code := c.StopDelay, 0
	f.mu.Unlock()
	if delay > timeout {
		delay, code = timeout, 137
	}
	if delay > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.status.State == "running" || c.status.State == "restarting" {
		c.status = engine.Status{State: "exited", ExitCode: code, HasHealthcheck: c.status.HasHealthcheck}
	}
	return nil
}

func (f *fakeEngine) StartContainer(ctx context.Context, id string) error {
	f.record("start", id, "")
	if f.StartFn != nil {
		return f.StartFn(ctx, id)
	}
	return f.defaultStart(ctx, id)
}

// defaultStart is the simulated start, for StartFn to fall back on.
func (f *fakeEngine) defaultStart(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
	}
	if c.status.State == "running" {
		return nil
	}
	c.inspects = 0
	c.status = engine.Status{State: "running", HasHealthcheck: c.Health != ""}
	if c.Health != "" {
		c.status.Health = "starting"
	}
	return nil
}

func (f *fakeEngine) InspectContainer(ctx context.Context, id string) (engine.Status, error) {
	st, err := f.inspect(ctx, id)
	detail := st.State
	if st.State == "exited" {
		detail += fmt.Sprintf("/%d", st.ExitCode)
	} else if st.Health != "" {
		detail += "/" + st.Health
	}
	if err != nil {
		detail = "error: " + err.Error()
	}
	f.record("inspect", id, detail)
	return st, err
}

func (f *fakeEngine) inspect(ctx context.Context, id string) (engine.Status, error) {
	if f.InspectFn != nil {
		return f.InspectFn(ctx, id)
	}
	return f.defaultInspect(ctx, id)
}

// defaultInspect is the simulated inspect, for InspectFn to fall back on.
func (f *fakeEngine) defaultInspect(ctx context.Context, id string) (engine.Status, error) {
	if err := ctx.Err(); err != nil {
		return engine.Status{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return engine.Status{}, fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
	}
	if c.status.State == "running" {
		c.inspects++
		switch {
		case c.ExitAfter > 0 && c.inspects >= c.ExitAfter:
			c.status = engine.Status{State: "exited", ExitCode: c.ExitCode, HasHealthcheck: c.status.HasHealthcheck}
		case c.Health != "" && c.status.Health == "starting" && c.inspects > c.HealthyAfter:
			c.status.Health = c.Health
			if c.Health == "unhealthy" {
				c.status.HealthLog = "probe failed"
			}
		}
	}
	return c.status, nil
}

// recorder collects progress events.
type recorder struct {
	mu     sync.Mutex
	events []progressEvent
}

type progressEvent struct {
	Kind, Service, Container, Message string
}

func (r *recorder) Events() []progressEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// kinds returns the events of kind k.
func (r *recorder) kinds(k string) []progressEvent {
	var out []progressEvent
	for _, e := range r.Events() {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) Report(e progress.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, progressEvent{Kind: string(e.Kind), Service: e.Service, Container: e.Container, Message: e.Message})
}
