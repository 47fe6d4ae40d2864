package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock the test moves by hand. Every NewTimer call is
// counted: the loop creates exactly one timer each time it goes back to
// waiting, so "the count grew" means "the loop has settled".
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	created int
	changed chan struct{} // closed and replaced on every NewTimer
}

type fakeTimer struct {
	c     chan time.Time
	at    time.Time
	done  bool // fired or stopped
	clock *fakeClock
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: c.now.Add(d), clock: c}
	if d <= 0 {
		t.done = true
		t.c <- c.now
	} else {
		c.timers = append(c.timers, t)
	}
	c.created++
	close(c.changed)
	c.changed = make(chan struct{})
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// set moves the clock to now and fires the timers that are due.
func (c *fakeClock) set(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
	var pending []*fakeTimer
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(now):
			t.done = true
			t.c <- now
		default:
			pending = append(pending, t)
		}
	}
	c.timers = pending
}

// nextTimer returns the earliest pending timer's deadline.
func (c *fakeClock) nextTimer() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var at time.Time
	for _, t := range c.timers {
		if !t.done && (at.IsZero() || t.at.Before(at)) {
			at = t.at
		}
	}
	return at, !at.IsZero()
}

type harness struct {
	t       *testing.T
	clk     *fakeClock
	cancel  context.CancelFunc
	served  chan error
	release chan error // a value ends one blocked Run with that error

	mu     sync.Mutex
	events []Event
	calls  []string // "project reason"
}

// start serves projects from now on the fake clock. Runs block until
// finish or the context is cancelled.
func start(t *testing.T, now time.Time, projects ...Project) *harness {
	t.Helper()
	h := &harness{t: t, clk: newFakeClock(now), served: make(chan error, 1), release: make(chan error)}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	s := &Scheduler{
		Projects: projects,
		Clock:    h.clk,
		Poll:     time.Minute,
		Notify: func(e Event) {
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
		},
		Run: func(ctx context.Context, project, reason string) error {
			h.mu.Lock()
			h.calls = append(h.calls, project+" "+reason)
			h.mu.Unlock()
			select {
			case err := <-h.release:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}
	c := h.clk.changedCh()
	go func() { h.served <- s.Serve(ctx) }()
	h.waitSettled(c)
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.served:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return h
}

func (c *fakeClock) changedCh() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (h *harness) waitSettled(c chan struct{}) {
	h.t.Helper()
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		h.t.Fatalf("the scheduler loop did not go back to waiting; events: %s", h.log())
	}
}

// step moves the clock to the next wake-up of the loop and waits until it
// is waiting again.
func (h *harness) step() time.Time {
	h.t.Helper()
	at, ok := h.clk.nextTimer()
	if !ok {
		h.t.Fatal("no pending timer")
	}
	c := h.clk.changedCh()
	h.clk.set(at)
	h.waitSettled(c)
	return at
}

// until steps until the clock reaches end.
func (h *harness) until(end time.Time) {
	h.t.Helper()
	for {
		at, ok := h.clk.nextTimer()
		if !ok || at.After(end) {
			return
		}
		h.step()
	}
}

// jump moves the clock to now at once, as after a suspend, and lets the
// loop wake.
func (h *harness) jump(now time.Time) {
	h.t.Helper()
	c := h.clk.changedCh()
	h.clk.set(now)
	h.waitSettled(c)
}

// finish ends the one blocked run with err.
func (h *harness) finish(err error) {
	h.t.Helper()
	c := h.clk.changedCh()
	select {
	case h.release <- err:
	case <-time.After(5 * time.Second):
		h.t.Fatal("no run to finish")
	}
	h.waitSettled(c)
}

// log returns the events so far, one "kind project due/next reason" line each.
func (h *harness) log() string {
	var b strings.Builder
	for _, e := range h.take(false) {
		fmt.Fprintf(&b, "\n  %s", format(e))
	}
	return b.String()
}

// take returns the events so far and, if clear, forgets them.
func (h *harness) take(clear bool) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.events
	if clear {
		h.events = nil
	}
	return out
}

func hm(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("01-02 15:04")
}

// format renders the parts of e the tests compare.
func format(e Event) string {
	switch e.Kind {
	case Loaded:
		return fmt.Sprintf("loaded %s next=%s", e.Project, hm(e.Next))
	case Started:
		return fmt.Sprintf("started %s at=%s due=%s %s", e.Project, hm(e.Time), hm(e.Due), e.Reason)
	case Finished:
		return fmt.Sprintf("finished %s at=%s err=%v next=%s", e.Project, hm(e.Time), e.Err, hm(e.Next))
	case Skipped:
		r := e.Reason
		if i := strings.Index(r, " ("); i >= 0 && strings.HasPrefix(r, "the previous") {
			r = "still running"
		} else if strings.Contains(r, "late") {
			r = "late"
		}
		return fmt.Sprintf("skipped %s due=%s next=%s %s", e.Project, hm(e.Due), hm(e.Next), r)
	case LoadFailed:
		return fmt.Sprintf("load failed %s: %v", e.Project, e.Err)
	case Stopping:
		return fmt.Sprintf("stopping running=%d", e.Running)
	}
	return e.Kind.String()
}

func (h *harness) expect(want ...string) {
	h.t.Helper()
	got := h.take(true)
	var g []string
	for _, e := range got {
		g = append(g, format(e))
	}
	if strings.Join(g, "\n") != strings.Join(want, "\n") {
		h.t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(g, "\n  "), strings.Join(want, "\n  "))
	}
}

// settings is a project whose settings the test changes; a change bumps
// the stamp as a write to the file would.
type settings struct {
	mu      sync.Mutex
	cfg     Config
	err     error
	version int
	loads   int
}

func (s *settings) set(fn func(c *Config)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.cfg)
	s.version++
}

func (s *settings) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
	s.version++
}

func (s *settings) project(name string) Project {
	return Project{
		Name: name,
		Stamp: func() (string, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return fmt.Sprint(s.version), nil
		},
		Load: func(context.Context) (Config, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.loads++
			return s.cfg, s.err
		},
	}
}

var t0 = time.Date(2026, 11, 25, 10, 7, 30, 0, time.UTC)

func at(hhmm string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", "2026-11-25 "+hhmm)
	if err != nil {
		panic(err)
	}
	return t
}

func TestFiresAtCronTimes(t *testing.T) {
	s := &settings{cfg: Config{Enabled: true, Schedule: "*/15 * * * *"}}
	h := start(t, t0, s.project("shop"))
	h.until(at("10:15"))
	h.finish(nil)
	h.until(at("10:30"))
	h.finish(errors.New("boom"))
	h.until(at("10:44"))
	h.expect(
		"loaded shop next=11-25 10:15",
		"started shop at=11-25 10:15 due=11-25 10:15 schedule",
		"finished shop at=11-25 10:15 err=<nil> next=11-25 10:30",
		"started shop at=11-25 10:30 due=11-25 10:30 schedule",
		"finished shop at=11-25 10:30 err=boom next=11-25 10:45",
	)
}

func TestDisabledNeverFires(t *testing.T) {
	s := &settings{cfg: Config{Enabled: false, Schedule: "* * * * *"}}
	h := start(t, t0, s.project("shop"))
	h.until(t0.Add(3 * time.Hour))
	h.expect("loaded shop next=-")
}

func TestNoOverlap(t *testing.T) {
	s := &settings{cfg: Config{Enabled: true, Schedule: "* * * * *"}}
	h := start(t, t0, s.project("shop"))
	h.until(at("10:10"))
	h.finish(nil)
	h.until(at("10:11"))
	h.expect(
		"loaded shop next=11-25 10:08",
		"started shop at=11-25 10:08 due=11-25 10:08 schedule",
		"skipped shop due=11-25 10:09 next=11-25 10:10 still running",
		"skipped shop due=11-25 10:10 next=11-25 10:11 still running",
		"finished shop at=11-25 10:10 err=<nil> next=11-25 10:11",
		"started shop at=11-25 10:11 due=11-25 10:11 schedule",
	)
}

// Two projects run independently: one's long backup does not hold up the
// other's.
func TestProjectsAreIndependent(t *testing.T) {
	a := &settings{cfg: Config{Enabled: true, Schedule: "0 * * * *"}}
	b := &settings{cfg: Config{Enabled: true, Schedule: "30 * * * *"}}
	h := start(t, t0, a.project("a"), b.project("b"))
	h.until(at("10:30"))
	h.expect(
		"loaded a next=11-25 11:00",
		"loaded b next=11-25 10:30",
		"started b at=11-25 10:30 due=11-25 10:30 schedule",
	)
	h.until(at("11:00"))
	h.expect("started a at=11-25 11:00 due=11-25 11:00 schedule")
}

func TestCatchUpAtStartup(t *testing.T) {
	daily := "0 2 * * *"
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{
			name: "missed while down, catch_up on: one run at once",
			cfg:  Config{Enabled: true, Schedule: daily, CatchUp: true, LastRun: t0.Add(-72 * time.Hour)},
			want: []string{"loaded shop next=11-26 02:00", "started shop at=11-25 10:07 due=11-23 02:00 catch-up"},
		},
		{
			name: "missed, catch_up off: wait for the schedule",
			cfg:  Config{Enabled: true, Schedule: daily, CatchUp: false, LastRun: t0.Add(-72 * time.Hour)},
			want: []string{"loaded shop next=11-26 02:00"},
		},
		{
			name: "nothing missed: the last run was after the last due time",
			cfg:  Config{Enabled: true, Schedule: daily, CatchUp: true, LastRun: at("02:00").Add(3 * time.Second)},
			want: []string{"loaded shop next=11-26 02:00"},
		},
		{
			name: "never backed up: nothing to catch up",
			cfg:  Config{Enabled: true, Schedule: daily, CatchUp: true},
			want: []string{"loaded shop next=11-26 02:00"},
		},
		{
			name: "disabled: no catch-up",
			cfg:  Config{Enabled: false, Schedule: daily, CatchUp: true, LastRun: t0.Add(-72 * time.Hour)},
			want: []string{"loaded shop next=-"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &settings{cfg: tt.cfg}
			h := start(t, t0, s.project("shop"))
			h.expect(tt.want...)
		})
	}
}

// A host that slept through a tick: with catch_up the tick runs when the
// daemon notices, without it is skipped and reported.
func TestLateTick(t *testing.T) {
	for _, catchUp := range []bool{false, true} {
		t.Run(fmt.Sprint("catch_up=", catchUp), func(t *testing.T) {
			s := &settings{cfg: Config{Enabled: true, Schedule: "0 11 * * *", CatchUp: catchUp}}
			h := start(t, t0, s.project("shop"))
			h.jump(at("13:20"))
			want := "skipped shop due=11-25 11:00 next=11-26 11:00 late"
			if catchUp {
				want = "started shop at=11-25 13:20 due=11-25 11:00 schedule"
			}
			h.expect("loaded shop next=11-25 11:00", want)
		})
	}
}

func TestReloadOnChange(t *testing.T) {
	s := &settings{cfg: Config{Enabled: true, Schedule: "0 12 * * *"}}
	h := start(t, t0, s.project("shop"))
	h.step() // a poll without a change does not reload
	if s.loads != 1 {
		t.Errorf("Load called %d times without a change, want 1", s.loads)
	}

	s.set(func(c *Config) { c.Schedule = "30 10 * * *" })
	h.until(at("10:30"))
	h.finish(nil)
	s.set(func(c *Config) { c.Enabled = false })
	h.until(at("12:30"))
	s.fail(errors.New("autobackup.toml line 3: unknown setting"))
	h.until(at("12:40"))
	s.set(func(c *Config) { c.Enabled = true })
	s.fail(nil)
	h.until(at("12:50"))
	h.expect(
		"loaded shop next=11-25 12:00",
		"loaded shop next=11-25 10:30",
		"started shop at=11-25 10:30 due=11-25 10:30 schedule",
		"finished shop at=11-25 10:30 err=<nil> next=11-26 10:30",
		"loaded shop next=-",
		"load failed shop: autobackup.toml line 3: unknown setting", // once, not at every poll
		"loaded shop next=11-26 10:30",
	)
}

func TestInvalidScheduleKeepsPrevious(t *testing.T) {
	s := &settings{cfg: Config{Enabled: true, Schedule: "0 11 * * *"}}
	h := start(t, t0, s.project("shop"))
	s.set(func(c *Config) { c.Schedule = "61 * * * *" })
	h.until(at("11:00"))
	got := h.take(true)
	if len(got) != 3 || got[1].Kind != LoadFailed || format(got[2]) != "started shop at=11-25 11:00 due=11-25 11:00 schedule" {
		var lines []string
		for _, e := range got {
			lines = append(lines, format(e))
		}
		t.Errorf("events: %v; want loaded, load failed, started at 11:00 on the old schedule", lines)
	}
}

func TestStopCancelsRunAndWaits(t *testing.T) {
	s := &settings{cfg: Config{Enabled: true, Schedule: "* * * * *"}}
	h := start(t, t0, s.project("shop"))
	h.step()
	h.cancel()
	select {
	case err := <-h.served:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	h.served <- nil // for the cleanup
	h.expect(
		"loaded shop next=11-25 10:08",
		"started shop at=11-25 10:08 due=11-25 10:08 schedule",
		"stopping running=1",
		"finished shop at=11-25 10:08 err=context canceled next=11-25 10:09",
	)
}

func TestServeNeedsProjects(t *testing.T) {
	s := &Scheduler{Run: func(context.Context, string, string) error { return nil }}
	if err := s.Serve(context.Background()); err == nil {
		t.Error("Serve with no projects: want an error")
	}
}
