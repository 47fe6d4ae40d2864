package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/metrics"
	"github.com/docker-autobackup/docker-autobackup/internal/notify"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// This file tells the world how a run went: notifications, the dead man's
// switch ping and the metrics file. None of it may fail or hold up a
// backup: each delivery is bounded by notify_timeout, runs alongside the
// others, and a failure is recorded in [monitor] (shown by status, retried
// at the next run) and handed to warn.

// outcome is what a finished backup or restore reports.
type outcome struct {
	kind        string // notify.KindBackup or notify.KindRestore
	id          string
	started     time.Time
	finished    time.Time
	downtime    time.Duration
	sizeBytes   int64
	volumes     int
	stopped     []string // services the run stopped (and so found running)
	err         error
	interrupted bool
	output      string
}

// updateServicesDown records which services are down after the run: those
// it could not bring back, and those down before that it did not find
// running (a service the run stopped was up again by then).
func updateServicesDown(f *state.File, o outcome, down []string) {
	still := slices.Clone(down)
	for _, s := range f.Monitor.ServicesDown {
		if !slices.Contains(o.stopped, s) && !slices.Contains(still, s) {
			still = append(still, s)
		}
	}
	slices.Sort(still)
	switch {
	case len(down) > 0:
		f.SetServicesDown(o.id, o.finished, still)
	case len(still) == 0:
		f.SetServicesDown("", time.Time{}, nil)
	default:
		f.Monitor.ServicesDown = still
	}
}

// PingStart tells ping_url that a backup starts. Bounded by notify_timeout;
// a failure is recorded and reported as a warning, never returned.
func (s *Service) PingStart(ctx context.Context, env *Project) {
	warn := s.warn
	u := env.Settings.PingURL
	if u == "" {
		return
	}
	err := notify.Ping(context.WithoutCancel(ctx), u, notify.PingStart, "", env.Settings.NotifyTimeout)
	recordDeliveries(env, "", []delivery{{kind: state.DeliveryPing, target: notify.Redact(u), err: err}}, warn)
}

// ReportBackup reports a finished backup run, after it was recorded:
// notifications, the ping with the run's log (log) on failure, metrics.
func ReportBackup(ctx context.Context, env *Project, res *backup.Result, runErr error, interrupted bool, log string, warn func(string)) {
	o := outcome{kind: notify.KindBackup, err: runErr, interrupted: interrupted}
	if res != nil {
		o.id, o.started, o.finished, o.downtime, o.sizeBytes, o.volumes = res.ID, res.Started, res.Finished, res.Downtime, res.SizeBytes, len(res.Volumes)
		o.stopped = res.Stopped
	}
	o.output = log
	deliver(ctx, env, o, warn)
}

// BackupNotStarted reports a backup that could not even start
// (the engine does not answer): nothing is recorded in the history, but
// the notification and the failure ping go out, so that a backup that
// silently stopped happening is not silent.
func (s *Service) BackupNotStarted(ctx context.Context, env *Project, err error) {
	now := s.now().UTC()
	if !errors.Is(err, backup.ErrPreflight) {
		err = fmt.Errorf("%w (%w)", err, backup.ErrPreflight)
	}
	deliver(ctx, env, outcome{kind: notify.KindBackup, started: now, finished: now, err: err}, s.warn)
}

// ReportRestore reports a finished restore: notifications when it failed
// (or always, with notify_on = always) and the services-down record.
func ReportRestore(ctx context.Context, env *Project, rec state.Restore, res *backup.RestoreResult, runErr error, warn func(string)) {
	o := outcome{kind: notify.KindRestore, id: rec.BackupID, started: rec.Started, finished: rec.Finished,
		volumes: len(rec.Volumes), err: runErr, interrupted: rec.Status == state.StatusInterrupted}
	if res != nil {
		o.downtime, o.stopped = res.Downtime, res.Stopped
	}
	deliver(ctx, env, o, warn)
}

type delivery struct {
	kind, target, event string
	err                 error
}

func deliver(ctx context.Context, env *Project, o outcome, warn func(string)) {
	ctx = context.WithoutCancel(ctx)
	s := env.Settings
	ev := newEvent(env, o)

	// What the run learnt about services goes in first: `check` relies on
	// it even when every delivery fails.
	var f *state.File
	var err error
	if errors.Is(o.err, backup.ErrPreflight) {
		// A run that stopped nothing learnt nothing about the services.
		f, err = state.Load(env.StatePath)
	} else {
		err = state.Update(env.StatePath, func(file *state.File) error {
			updateServicesDown(file, o, ev.Down)
			f = file
			return nil
		})
	}
	if err != nil {
		warn(fmt.Sprintf("record the services' state: %v", err))
		if f, err = state.Load(env.StatePath); err != nil {
			f = env.State
		}
	}

	var (
		mu      sync.Mutex
		results []delivery
		wg      sync.WaitGroup
	)
	add := func(d ...delivery) {
		mu.Lock()
		results = append(results, d...)
		mu.Unlock()
	}
	if len(s.Notify) > 0 && (ev.Failed() || s.NotifyOn == state.NotifyOnAlways) {
		wg.Go(func() {
			for _, r := range notify.Send(ctx, s.Notify, ev, s.NotifyTimeout) {
				add(delivery{kind: state.DeliveryNotify, target: r.Target, event: o.id, err: r.Err})
			}
		})
	}
	// Earlier notifications that did not go through are sent again, about
	// the run they were about.
	for _, p := range f.Monitor.Pending {
		if p.Kind != state.DeliveryNotify || p.Event == o.id {
			continue
		}
		u, ok := configuredURL(s.Notify, p.Target)
		if !ok {
			continue
		}
		old, ok := pastEvent(env, f, p.Event)
		if !ok {
			continue
		}
		wg.Go(func() {
			old.Retry = p.Attempts
			r := notify.Send(ctx, []string{u}, old, s.NotifyTimeout)[0]
			add(delivery{kind: state.DeliveryNotify, target: r.Target, event: p.Event, err: r.Err})
		})
	}
	if s.PingURL != "" && o.kind == notify.KindBackup {
		wg.Go(func() {
			kind, body := notify.PingSuccess, ev.Text()
			if ev.Failed() {
				kind = notify.PingFail
				body = o.output + "\n" + ev.Text()
			}
			err := notify.Ping(ctx, s.PingURL, kind, body, s.NotifyTimeout)
			add(delivery{kind: state.DeliveryPing, target: notify.Redact(s.PingURL), event: o.id, err: err})
		})
	}
	if path := s.MetricsPath(env.Dir); path != "" {
		snap := metricsSnapshot(env, f)
		wg.Go(func() {
			add(delivery{kind: state.DeliveryMetrics, target: path, event: o.id, err: writeBounded(path, snap, s.NotifyTimeout)})
		})
	}
	wg.Wait()
	recordDeliveries(env, o.id, results, warn)
}

// writeBounded writes the metrics file unless that takes longer than
// timeout (a hung network file system): then it is left to finish alone.
func writeBounded(path string, snap metrics.Snapshot, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- metrics.Write(path, snap) }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("metrics: writing %s took longer than %s", path, timeout)
	}
}

// recordDeliveries stores failed deliveries and clears those that went
// through. A state file that cannot be written only costs the record.
func recordDeliveries(env *Project, event string, ds []delivery, warn func(string)) {
	if len(ds) == 0 {
		return
	}
	red := notify.NewRedactor(append(append([]string{}, env.Settings.Notify...), env.Settings.PingURL)...)
	now := time.Now()
	targets := map[string]bool{env.Settings.MetricsPath(env.Dir): true, notify.Redact(env.Settings.PingURL): true}
	for _, u := range env.Settings.Notify {
		targets[notify.Redact(u)] = true
	}
	err := state.Update(env.StatePath, func(f *state.File) error {
		for _, d := range ds {
			ev := d.event
			if ev == "" {
				ev = event
			}
			if d.err == nil {
				// A notification is about its run; a ping or a metrics
				// write supersedes the failed ones before it.
				if d.kind != state.DeliveryNotify {
					ev = ""
				}
				f.ClearDelivery(d.kind, d.target, ev)
				continue
			}
			f.RecordDelivery(state.Delivery{Kind: d.kind, Target: d.target, Event: ev, Time: now, Error: red.Scrub(text.OneLine(d.err.Error()))})
		}
		// Failures towards targets no longer configured are moot.
		f.KeepDeliveries(func(p state.Delivery) bool { return targets[p.Target] })
		return nil
	})
	for _, d := range ds {
		if d.err != nil {
			warn(fmt.Sprintf("%s to %s failed (retried at the next run): %s", d.kind, d.target, red.Scrub(text.OneLine(d.err.Error()))))
		}
	}
	if err != nil {
		warn(fmt.Sprintf("record the deliveries: %v", err))
	}
}

// configuredURL returns the configured URL whose redacted form is target.
func configuredURL(urls []string, target string) (string, bool) {
	for _, u := range urls {
		if notify.Redact(u) == target {
			return u, true
		}
	}
	return "", false
}

// newEvent describes the outcome for a notification.
func newEvent(env *Project, o outcome) notify.Event {
	host, _ := os.Hostname()
	ev := notify.Event{
		Kind: o.kind, Project: env.Project.Name, ProjectDir: env.Dir, Host: host,
		BackupID: o.id, Status: notify.StatusSuccess, Started: o.started, Finished: o.finished,
		Downtime: o.downtime, SizeBytes: o.sizeBytes, Volumes: o.volumes,
	}
	if o.err != nil {
		ev.Status = notify.StatusFailed
		if o.interrupted {
			ev.Status = notify.StatusInterrupted
		}
		ev.Error = text.OneLine(o.err.Error())
		var restart *compose.RestartError
		if errors.As(o.err, &restart) {
			ev.Status = notify.StatusServicesDown
			ev.Down = restart.Services()
			ev.ComposeCmd = env.UpCommand()
		}
	}
	return ev
}

// pastEvent rebuilds the event of an earlier backup or restore from the
// history, to retry its notification.
func pastEvent(env *Project, f *state.File, id string) (notify.Event, bool) {
	host, _ := os.Hostname()
	ev := notify.Event{Project: env.Project.Name, ProjectDir: env.Dir, Host: host, BackupID: id}
	if b, ok := f.FindBackup(id); ok {
		ev.Kind, ev.Status, ev.Started, ev.Finished = notify.KindBackup, b.Status, b.Started, b.Finished
		ev.Downtime = time.Duration(b.DowntimeSeconds * float64(time.Second))
		ev.SizeBytes, ev.Volumes, ev.Error = b.SizeBytes, len(b.Volumes), b.Error
	} else if r, ok := findRestoreOf(f, id); ok {
		ev.Kind, ev.Status, ev.Started, ev.Finished, ev.Volumes, ev.Error = notify.KindRestore, r.Status, r.Started, r.Finished, len(r.Volumes), r.Error
	} else {
		return ev, false
	}
	if f.Monitor.ServicesDownBy == id && len(f.Monitor.ServicesDown) > 0 {
		ev.Status, ev.Down, ev.ComposeCmd = notify.StatusServicesDown, f.Monitor.ServicesDown, env.UpCommand()
	}
	return ev, true
}

// findRestoreOf returns the newest restore of backup id.
func findRestoreOf(f *state.File, id string) (state.Restore, bool) {
	for i := len(f.Restores) - 1; i >= 0; i-- {
		if f.Restores[i].BackupID == id {
			return f.Restores[i], true
		}
	}
	return state.Restore{}, false
}

// UpCommand is the command that brings the project's services back.
func (env *Project) UpCommand() string {
	parts := []string{"docker", "compose", "--project-directory", text.ShellQuote(env.Dir)}
	for _, f := range env.Project.ComposeFiles {
		parts = append(parts, "-f", text.ShellQuote(f))
	}
	parts = append(parts, "-p", text.ShellQuote(env.Project.Name), "up", "-d", "--wait")
	return strings.Join(parts, " ")
}

// metricsSnapshot gathers the metrics of the project from its state file
// and the latest successful backup's manifest.
func metricsSnapshot(env *Project, f *state.File) metrics.Snapshot {
	snap := metrics.Snapshot{
		Project:      env.Project.Name,
		LastRun:      f.State.LastBackupTime,
		LastSuccess:  f.State.LastSuccessTime,
		ServicesDown: len(f.Monitor.ServicesDown),
	}
	if b, ok := f.FindBackup(f.State.LastBackupID); ok {
		snap.LastStatus = b.Status
		snap.Duration = time.Duration(b.DurationSeconds * float64(time.Second))
		snap.Downtime = time.Duration(b.DowntimeSeconds * float64(time.Second))
	}
	if b, ok := f.FindBackup(f.State.LastSuccessID); ok {
		snap.ArchiveBytes = b.SizeBytes
	}
	if id := f.State.LastSuccessID; id != "" {
		if m, _, err := archive.Open(env.BackupDir, env.Project.Name, id); err == nil {
			for _, v := range m.Volumes {
				snap.Volumes = append(snap.Volumes, metrics.Volume{Name: v.Name, ArchiveBytes: v.ArchiveBytes, Bytes: v.TarBytes})
			}
		}
	}
	return snap
}
