package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// Config is what the scheduler needs to know about a project.
type Config struct {
	Enabled  bool
	Schedule string    // as state.ParseSchedule accepts it
	CatchUp  bool      // run once at start-up when a scheduled time was missed
	LastRun  time.Time // start of the last recorded backup (any outcome); zero if none
}

// Project is one project the scheduler serves.
type Project struct {
	// Name identifies the project in events and in Run; the daemon uses
	// its directory.
	Name string
	// Stamp returns a value that changes whenever the project's settings
	// may have changed (e.g. size and mtime of its files). It is called
	// every Poll interval and must be cheap.
	Stamp func() (string, error)
	// Load reads the project's settings. It is called at start-up and
	// whenever Stamp changes.
	Load func(ctx context.Context) (Config, error)
}

// Reasons a run starts, in Event.Reason and the reason passed to Run.
const (
	ReasonSchedule = "schedule"
	ReasonCatchUp  = "catch-up"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// Loaded: settings were (re)loaded; Next is the next run, zero when
	// disabled.
	Loaded EventKind = iota
	// LoadFailed: settings could not be read; Err says why. The previous
	// settings stay in effect (none at start-up: the project waits for a
	// fix).
	LoadFailed
	// Started: a run started; Reason is ReasonSchedule or ReasonCatchUp,
	// Due the time it was due.
	Started
	// Finished: a run returned; Err is its error, Duration how long it
	// took, Next the next run.
	Finished
	// Skipped: a due time passed without a run; Reason says why.
	Skipped
	// Stopping: the context was cancelled; the scheduler waits for Running
	// runs to return.
	Stopping
)

func (k EventKind) String() string {
	switch k {
	case Loaded:
		return "loaded"
	case LoadFailed:
		return "load failed"
	case Started:
		return "started"
	case Finished:
		return "finished"
	case Skipped:
		return "skipped"
	case Stopping:
		return "stopping"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a report from the scheduler.
type Event struct {
	Kind     EventKind
	Project  string
	Time     time.Time // the scheduler's clock when it happened
	Due      time.Time // Started, Skipped: the scheduled time
	Next     time.Time // Loaded, Finished, Skipped: the next scheduled time; zero when disabled
	Reason   string
	Err      error
	Duration time.Duration // Finished
	Running  int           // Stopping: runs still going
	Config   Config        // Loaded
}

// Scheduler runs Run for each project at its scheduled times. Set the
// fields, then call Serve once.
type Scheduler struct {
	Projects []Project
	// Run performs one backup of the named project. Its context is
	// cancelled when Serve's is; it should then abort cleanly and return.
	// Runs of different projects may be concurrent, never of one project.
	Run func(ctx context.Context, project, reason string) error
	// Notify receives events, from one goroutine at a time. May be nil.
	Notify func(Event)
	// Clock defaults to RealClock.
	Clock Clock
	// Poll is how often Stamp is checked and the wall clock re-read
	// (default 10s).
	Poll time.Duration
	// Late is how far past its time a tick may be found and still run when
	// catch_up is off (default 1m): a tick found later (the host slept) is
	// skipped and reported.
	Late time.Duration
}

type project struct {
	Project
	cfg      Config
	sched    cron.Schedule // nil when disabled or never loaded
	loaded   bool          // a Load succeeded
	tried    bool          // Load was called for stamp
	stamp    string
	stampErr string
	next     time.Time // zero when not scheduled
	running  bool
	started  time.Time
}

type result struct {
	p   *project
	err error
}

// Serve runs the loop until ctx is done, then waits for the runs in progress
// to return (they see ctx cancelled) and returns nil. It returns an error at
// once when there is nothing to serve.
func (s *Scheduler) Serve(ctx context.Context) error {
	if len(s.Projects) == 0 {
		return errors.New("scheduler: no projects")
	}
	if s.Run == nil {
		return errors.New("scheduler: no Run function")
	}
	clk := s.Clock
	if clk == nil {
		clk = RealClock{}
	}
	poll := s.Poll
	if poll <= 0 {
		poll = 10 * time.Second
	}
	late := s.Late
	if late <= 0 {
		late = time.Minute
	}
	notify := func(e Event) {
		if s.Notify != nil {
			s.Notify(e)
		}
	}

	// Runs get a context of their own so that the loop decides when they
	// are cancelled: only when Serve's context is.
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	done := make(chan result)
	running := 0
	start := func(p *project, due time.Time, reason string) {
		p.running = true
		p.started = clk.Now()
		running++
		notify(Event{Kind: Started, Project: p.Name, Time: p.started, Due: due, Reason: reason})
		go func() {
			err := s.Run(runCtx, p.Name, reason)
			done <- result{p, err}
		}()
	}
	finish := func(r result) {
		r.p.running = false
		running--
		now := clk.Now()
		notify(Event{Kind: Finished, Project: r.p.Name, Time: now, Err: r.err, Duration: now.Sub(r.p.started), Next: r.p.next})
	}

	ps := make([]*project, len(s.Projects))
	now := clk.Now()
	for i, sp := range s.Projects {
		p := &project{Project: sp}
		ps[i] = p
		s.reload(ctx, p, now, true, notify)
		if p.sched == nil || !p.cfg.CatchUp {
			continue
		}
		if p.cfg.LastRun.IsZero() {
			// Nothing to judge a miss by; the schedule starts now.
			continue
		}
		if missed := p.sched.Next(p.cfg.LastRun); !missed.IsZero() && !missed.After(now) {
			start(p, missed, ReasonCatchUp)
		}
	}

	nextPoll := now.Add(poll)
	for {
		wake := nextPoll
		for _, p := range ps {
			if !p.next.IsZero() && p.next.Before(wake) {
				wake = p.next
			}
		}
		timer := clk.NewTimer(max(wake.Sub(clk.Now()), 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			notify(Event{Kind: Stopping, Time: clk.Now(), Running: running, Err: context.Cause(ctx)})
			cancelRuns()
			for running > 0 {
				finish(<-done)
			}
			return nil
		case r := <-done:
			timer.Stop()
			finish(r)
		case <-timer.C():
		}

		now = clk.Now()
		if !now.Before(nextPoll) {
			for _, p := range ps {
				s.reload(ctx, p, now, false, notify)
			}
			nextPoll = now.Add(poll)
		}
		for _, p := range ps {
			if p.next.IsZero() || now.Before(p.next) {
				continue
			}
			due := p.next
			p.next = p.sched.Next(now)
			switch {
			case p.running:
				notify(Event{Kind: Skipped, Project: p.Name, Time: now, Due: due, Next: p.next,
					Reason: fmt.Sprintf("the previous backup (started %s) is still running", p.started.Format(time.RFC3339))})
			case now.Sub(due) > late && !p.cfg.CatchUp:
				notify(Event{Kind: Skipped, Project: p.Name, Time: now, Due: due, Next: p.next,
					Reason: fmt.Sprintf("found %s late (was the host asleep?) and catch_up is off", now.Sub(due).Round(time.Second))})
			default:
				start(p, due, ReasonSchedule)
			}
		}
	}
}

// reload loads p's settings when its stamp changed (always when first),
// and reschedules it when enabled or the schedule changed.
func (s *Scheduler) reload(ctx context.Context, p *project, now time.Time, first bool, notify func(Event)) {
	stamp, err := p.Stamp()
	if err != nil {
		if msg := err.Error(); msg != p.stampErr {
			p.stampErr = msg
			notify(Event{Kind: LoadFailed, Project: p.Name, Time: now, Err: err})
		}
		return
	}
	p.stampErr = ""
	if !first && p.tried && stamp == p.stamp {
		return
	}
	// Remembering the stamp before loading reports a broken file once, not
	// at every poll.
	p.stamp, p.tried = stamp, true
	cfg, err := p.Load(ctx)
	if err != nil {
		notify(Event{Kind: LoadFailed, Project: p.Name, Time: now, Err: err})
		return
	}
	var sched cron.Schedule
	if cfg.Enabled {
		if sched, err = state.ParseSchedule(cfg.Schedule); err != nil {
			notify(Event{Kind: LoadFailed, Project: p.Name, Time: now, Err: err})
			return
		}
	}
	changed := !p.loaded || cfg.Enabled != p.cfg.Enabled || cfg.Schedule != p.cfg.Schedule
	p.cfg, p.loaded = cfg, true
	if changed {
		p.sched = sched
		p.next = time.Time{}
		if sched != nil {
			p.next = sched.Next(now)
		}
		notify(Event{Kind: Loaded, Project: p.Name, Time: now, Next: p.next, Config: cfg})
	}
}
