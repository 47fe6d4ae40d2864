package compose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/compose-spec/compose-go/v2/graph"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

// Timeouts bound each step of a stop or start. Zero values take the
// defaults (30 s, 60 s, 180 s, polled every 2 s).
type Timeouts struct {
	Stop   time.Duration // per service, unless the service sets stop_grace_period
	Start  time.Duration // per container: until the engine reports it running
	Health time.Duration // all restarted containers running and healthy
	Poll   time.Duration // longest pause between two status checks
}

// DefaultTimeouts bound a step when no setting says otherwise: long enough
// for a database's shutdown checkpoint and a slow first health check.
var DefaultTimeouts = Timeouts{Stop: 30 * time.Second, Start: 60 * time.Second, Health: 180 * time.Second, Poll: 2 * time.Second}

func (t Timeouts) withDefaults() Timeouts {
	if t.Stop <= 0 {
		t.Stop = DefaultTimeouts.Stop
	}
	if t.Start <= 0 {
		t.Start = DefaultTimeouts.Start
	}
	if t.Health <= 0 {
		t.Health = DefaultTimeouts.Health
	}
	if t.Poll <= 0 {
		t.Poll = DefaultTimeouts.Poll
	}
	return t
}

// Hooks run around the engine calls, e.g. compose's pre_stop and
// post_start lifecycle hooks. Either may be nil.
type Hooks struct {
	// BeforeStop runs for each running container before it is stopped. An
	// error aborts the stop phase (what was already stopped is restarted).
	BeforeStop func(ctx context.Context, svc types.ServiceConfig, c engine.Container) error
	// AfterStart runs for each container once it is running again. An
	// error is reported as a failure of that service.
	AfterStart func(ctx context.Context, svc types.ServiceConfig, c engine.Container) error
}

// Lifecycle stops and starts the containers of one project.
type Lifecycle struct {
	Engine   Engine
	Project  *types.Project
	Timeouts Timeouts
	Reporter progress.Reporter
	Hooks    Hooks
	// Keep lists services that must not be stopped, with the reason
	// (e.g. x-autobackup stop: false).
	Keep map[string]string
}

// Stopped is the result of a stop phase: exactly the containers that were
// running and that this phase stopped. Restart brings them back.
type Stopped struct {
	l         *Lifecycle
	mu        sync.Mutex
	byService map[string][]engine.Container
	first     time.Time
	down      map[string]time.Time // per service: when its first container was stopped
	up        map[string]time.Time // per service: when it was first seen running and healthy again
	restarted bool
}

// StopTimeout returns how long svc gets to stop: its stop_grace_period,
// else the default.
func (l *Lifecycle) StopTimeout(svc types.ServiceConfig) time.Duration {
	if svc.StopGracePeriod != nil && *svc.StopGracePeriod > 0 {
		return time.Duration(*svc.StopGracePeriod)
	}
	return l.Timeouts.withDefaults().Stop
}

// Running returns, per service, the containers of containers that are
// running and are not one-off containers.
func Running(containers []engine.Container) map[string][]engine.Container {
	out := map[string][]engine.Container{}
	for _, c := range containers {
		if c.OneOff || !isRunning(c.State) {
			continue
		}
		out[c.Service] = append(out[c.Service], c)
	}
	for _, cs := range out {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Number < cs[j].Number })
	}
	return out
}

func isRunning(state string) bool { return state == "running" || state == "restarting" }

// Stop stops the running containers of services (all services when nil)
// in reverse dependency order: dependents before their dependencies,
// services without a relation in parallel. containers is the project's
// container list taken just before. A container that does not stop in
// time is killed by the engine; that is reported as a warning and the stop
// continues.
//
// Stop always returns a non-nil *Stopped whose Restart must be called,
// even when Stop returns an error: it restarts what was stopped so far.
func (l *Lifecycle) Stop(ctx context.Context, containers []engine.Container, services []string) (*Stopped, error) {
	st := &Stopped{l: l, byService: map[string][]engine.Container{}, down: map[string]time.Time{}, up: map[string]time.Time{}}
	running := Running(containers)
	want := func(name string) bool { return services == nil || slices.Contains(services, name) }
	// The walk may hand out the next service before it cancels its
	// context for a failed one, so a failure stops the phase here.
	var aborted atomic.Bool

	err := graph.InDependencyOrder(ctx, l.Project, func(ctx context.Context, name string, svc types.ServiceConfig) error {
		if !want(name) || aborted.Load() {
			return nil
		}
		cs := running[name]
		if len(cs) == 0 {
			progress.Send(l.Reporter, progress.Event{Kind: progress.ServiceSkipped, Service: name, Message: "not running; left as it is"})
			return nil
		}
		if reason, ok := l.Keep[name]; ok {
			progress.Send(l.Reporter, progress.Event{Kind: progress.ServiceSkipped, Service: name, Message: "kept running: " + reason})
			return nil
		}
		timeout := l.StopTimeout(svc)
		progress.Send(l.Reporter, progress.Event{Kind: progress.ServiceStop, Service: name})
		var wg sync.WaitGroup
		errs := make([]error, len(cs))
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = l.stopOne(ctx, st, svc, c, timeout)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			aborted.Store(true)
			return err
		}
		progress.Send(l.Reporter, progress.Event{Kind: progress.ServiceStopped, Service: name})
		return nil
	}, graph.InReverseOrder)
	if err == nil {
		err = ctx.Err()
	}
	return st, err
}

func (l *Lifecycle) stopOne(ctx context.Context, st *Stopped, svc types.ServiceConfig, c engine.Container, timeout time.Duration) error {
	if l.Hooks.BeforeStop != nil {
		if err := l.Hooks.BeforeStop(ctx, svc, c); err != nil {
			return fmt.Errorf("stop %s: %w", svc.Name, err)
		}
	}
	// Record before the call: if the call fails half-way the container
	// may be stopped, and Restart must bring it back.
	st.mu.Lock()
	now := time.Now()
	if st.first.IsZero() {
		st.first = now
	}
	if _, ok := st.down[svc.Name]; !ok {
		st.down[svc.Name] = now
	}
	st.byService[svc.Name] = append(st.byService[svc.Name], c)
	st.mu.Unlock()

	begin := time.Now()
	// A stop that has begun is finished even if ctx is cancelled: the
	// engine would go on and kill the container after the timeout anyway,
	// behind the back of the Restart that is about to run.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout+30*time.Second)
	defer cancel()
	if err := l.Engine.StopContainer(sctx, c.ID, timeout); err != nil {
		return fmt.Errorf("stop %s (container %s): %w", svc.Name, c.Name, err)
	}
	if elapsed := time.Since(begin); elapsed >= timeout {
		progress.Send(l.Reporter, progress.Event{Kind: progress.Warning, Service: svc.Name, Container: c.Name,
			Message: fmt.Sprintf("%s did not stop within %s; the engine killed it; continuing", c.Name, timeout)})
	}
	return nil
}

// FirstStop is when the first container was stopped (zero if none was).
func (s *Stopped) FirstStop() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// Downtimes returns, per stopped service, how long it was down: from the
// stop of its first container until it was seen running and healthy again,
// or until now for a service that is not back (yet).
func (s *Stopped) Downtimes() map[string]time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]time.Duration, len(s.down))
	now := time.Now()
	for name, t := range s.down {
		end, ok := s.up[name]
		if !ok {
			end = now
		}
		out[name] = end.Sub(t)
	}
	return out
}

// Services lists the services that have stopped containers, sorted.
func (s *Stopped) Services() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name := range s.byService {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Containers returns the containers this phase stopped.
func (s *Stopped) Containers() []engine.Container {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []engine.Container
	for _, cs := range s.byService {
		out = append(out, cs...)
	}
	return out
}

// RestartError lists the services that are not back: not started, exited,
// unhealthy or not healthy in time. It is the worst outcome of a run.
type RestartError struct {
	Failed map[string]error
}

func (e *RestartError) Error() string {
	names := e.Services()
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s: %v", n, e.Failed[n]))
	}
	return "services not back up: " + strings.Join(parts, "; ")
}

// Services lists the failed services, sorted.
func (e *RestartError) Services() []string {
	var names []string
	for n := range e.Failed {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Restart starts again, in dependency order, every container this stop
// phase stopped, then waits until each is running and, where it has a
// healthcheck, healthy. A service is started only once the dependencies it
// has a depends_on condition on satisfy it (service_started,
// service_healthy, service_completed_successfully).
//
// Restart deliberately ignores the cancellation of ctx (a Ctrl-C during
// the backup must still bring services back); it is bounded by the start
// and health timeouts instead. Calling it twice restarts once.
func (s *Stopped) Restart(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	s.mu.Lock()
	if s.restarted || len(s.byService) == 0 {
		s.restarted = true
		s.mu.Unlock()
		return nil
	}
	s.restarted = true
	s.mu.Unlock()

	l := s.l
	t := l.Timeouts.withDefaults()
	r := &restart{s: s, t: t, failed: map[string]error{}, done: map[string]bool{}}
	// Containers of dependencies that were running before and that we did
	// not stop (kept services) also satisfy conditions, so look them up once.
	containers, err := l.Engine.Containers(ctx, l.Project.Name)
	if err == nil {
		r.others = Running(containers)
	}
	healthDeadline := time.Now().Add(t.Health)
	r.healthDeadline = healthDeadline

	// The visitor never returns an error: one service failing must not
	// stop the others from coming back.
	_ = graph.InDependencyOrder(ctx, l.Project, func(ctx context.Context, name string, svc types.ServiceConfig) error {
		r.startService(ctx, name, svc)
		return nil
	})
	// Every stopped service is visited by the walk, but a service the
	// project no longer knows (a changed compose file) would not be.
	for name, cs := range s.byService {
		if _, ok := l.Project.Services[name]; !ok {
			r.startContainers(ctx, types.ServiceConfig{Name: name}, cs)
		}
	}
	// Wait for all of them, in parallel, up to the health deadline.
	var wg sync.WaitGroup
	for name, cs := range s.byService {
		if r.isFailed(name) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.waitReady(ctx, name, cs, true); err != nil {
				r.fail(name, err)
				return
			}
			r.markReady(name)
		}()
	}
	wg.Wait()
	if len(r.failed) > 0 {
		return &RestartError{Failed: r.failed}
	}
	return nil
}

type restart struct {
	s              *Stopped
	t              Timeouts
	others         map[string][]engine.Container
	healthDeadline time.Time

	mu     sync.Mutex
	failed map[string]error
	done   map[string]bool // services reported ready
}

// markReady reports a restarted service as ready, once, when it is first
// seen running and healthy.
func (r *restart) markReady(name string) {
	r.mu.Lock()
	seen := r.done[name]
	r.done[name] = true
	r.mu.Unlock()
	if !seen {
		r.s.mu.Lock()
		r.s.up[name] = time.Now()
		r.s.mu.Unlock()
		progress.Send(r.s.l.Reporter, progress.Event{Kind: progress.ServiceHealthy, Service: name})
	}
}

func (r *restart) fail(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.failed[name]; !ok {
		r.failed[name] = err
	}
}

func (r *restart) isFailed(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.failed[name]
	return ok
}

func (r *restart) startService(ctx context.Context, name string, svc types.ServiceConfig) {
	cs := r.s.byService[name]
	if len(cs) == 0 {
		return
	}
	l := r.s.l
	for dep, cond := range svc.DependsOn {
		if err := r.waitDependency(ctx, dep, cond); err != nil {
			r.fail(name, fmt.Errorf("not started: dependency %s: %w", dep, err))
			return
		}
	}
	progress.Send(l.Reporter, progress.Event{Kind: progress.ServiceStart, Service: name})
	if r.startContainers(ctx, svc, cs) {
		progress.Send(l.Reporter, progress.Event{Kind: progress.ServiceStarted, Service: name})
	}
}

func (r *restart) startContainers(ctx context.Context, svc types.ServiceConfig, cs []engine.Container) bool {
	l := r.s.l
	ok := true
	for _, c := range cs {
		sctx, cancel := context.WithTimeout(ctx, r.t.Start)
		err := l.Engine.StartContainer(sctx, c.ID)
		if err == nil {
			err = r.waitRunning(sctx, c)
		}
		cancel()
		if err == nil && l.Hooks.AfterStart != nil {
			err = l.Hooks.AfterStart(ctx, svc, c)
		}
		if err != nil {
			r.fail(svc.Name, fmt.Errorf("start %s: %w", c.Name, err))
			ok = false
		}
	}
	return ok
}

// waitDependency blocks until dep satisfies cond. Dependencies that were
// not running before the backup (and so were not stopped by us) are not
// started by us either; a service_started or service_healthy condition on
// them is treated as satisfied with nothing to wait for, since the
// dependent was running without them.
func (r *restart) waitDependency(ctx context.Context, dep string, cond types.ServiceDependency) error {
	if r.isFailed(dep) {
		return fmt.Errorf("did not come back")
	}
	cs := r.s.byService[dep]
	if len(cs) == 0 {
		cs = r.others[dep]
	}
	switch cond.Condition {
	case types.ServiceConditionHealthy:
		if len(cs) == 0 {
			return nil
		}
		if err := r.waitReady(ctx, dep, cs, true); err != nil {
			return err
		}
		if len(r.s.byService[dep]) > 0 {
			r.markReady(dep)
		}
		return nil
	case types.ServiceConditionCompletedSuccessfully:
		return r.waitCompleted(ctx, dep)
	default: // service_started
		if len(cs) == 0 {
			return nil
		}
		return r.waitReady(ctx, dep, cs, false)
	}
}

// waitCompleted waits until the one-shot dependency's containers have
// exited, and fails unless all exited with code 0.
func (r *restart) waitCompleted(ctx context.Context, dep string) error {
	l := r.s.l
	all, err := l.Engine.Containers(ctx, l.Project.Name)
	if err != nil {
		return err
	}
	for _, c := range all {
		if c.Service != dep || c.OneOff {
			continue
		}
		err := r.poll(ctx, r.healthDeadline, r.t.Health, c.Name+" has not completed", func() (bool, error) {
			st, err := l.Engine.InspectContainer(ctx, c.ID)
			if err != nil {
				return false, err
			}
			switch {
			case st.State == "exited" && st.ExitCode == 0:
				return true, nil
			case st.State == "exited" || st.State == "dead":
				return false, fmt.Errorf("%s exited with code %d", c.Name, st.ExitCode)
			}
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *restart) waitRunning(ctx context.Context, c engine.Container) error {
	l := r.s.l
	deadline, _ := ctx.Deadline()
	return r.poll(ctx, deadline, r.t.Start, c.Name+" is not running", func() (bool, error) {
		st, err := l.Engine.InspectContainer(ctx, c.ID)
		if err != nil {
			return false, err
		}
		switch st.State {
		case "running":
			return true, nil
		case "exited", "dead":
			return false, fmt.Errorf("%s exited with code %d right after start", c.Name, st.ExitCode)
		}
		return false, nil
	})
}

// waitReady waits until all of cs are running and, if healthy is set,
// healthy where they have a healthcheck.
func (r *restart) waitReady(ctx context.Context, name string, cs []engine.Container, healthy bool) error {
	l := r.s.l
	for _, c := range cs {
		what := c.Name + " is not running"
		if healthy {
			what = c.Name + " is not healthy"
		}
		err := r.poll(ctx, r.healthDeadline, r.t.Health, what, func() (bool, error) {
			st, err := l.Engine.InspectContainer(ctx, c.ID)
			if err != nil {
				return false, err
			}
			switch st.State {
			case "exited", "dead":
				return false, fmt.Errorf("%s exited with code %d", c.Name, st.ExitCode)
			case "running":
			default:
				return false, nil
			}
			if !healthy || !st.HasHealthcheck {
				return true, nil
			}
			switch st.Health {
			case "healthy":
				return true, nil
			case "unhealthy":
				msg := fmt.Sprintf("%s is unhealthy", c.Name)
				if st.HealthLog != "" {
					msg += " (last probe: " + st.HealthLog + ")"
				}
				return false, errors.New(msg)
			}
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// poll calls check until it reports done or an error, or the deadline
// passes. It checks quickly at first and backs off to the poll interval,
// so a fast service does not pay a whole interval of downtime.
func (r *restart) poll(ctx context.Context, deadline time.Time, limit time.Duration, what string, check func() (bool, error)) error {
	begin := time.Now()
	wait := min(25*time.Millisecond, r.t.Poll)
	for {
		done, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("%s after %s", what, limit.Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
		// Services usually come up within seconds: check at least every
		// 100 ms for the first 5 s so a fast service, and the services
		// waiting for it, do not wait a full interval (an inspect is
		// cheap), then every poll interval.
		limit := r.t.Poll
		if time.Since(begin) < 5*time.Second && limit > 100*time.Millisecond {
			limit = 100 * time.Millisecond
		}
		if wait > limit {
			wait = limit
		}
	}
}
