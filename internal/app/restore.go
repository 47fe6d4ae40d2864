package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// RestoreRequest is one restore of a backup into the project.
type RestoreRequest struct {
	// Options name the backup and what to restore (Project, BackupPath,
	// Manifest, Volumes, Safety, StopOthers); the service fills in the
	// rest from the project's settings.
	Options backup.RestoreOptions
	// LockTimeout is how long to wait for another run of the project;
	// negative means the lock_timeout setting.
	LockTimeout time.Duration
}

// PlannedRestore is a restore that has been planned and verified, with
// the project lock held, waiting for the go-ahead (the CLI asks the user
// in between). Release it in every case.
type PlannedRestore struct {
	Plan *backup.RestorePlan
	s    *Service
	p    *Project
	opts backup.RestoreOptions
	lock *state.Lock
}

// PlanRestore takes the project lock and plans the restore: the backup is
// verified, each backed-up volume mapped to the project's, the services to
// stop found, and volumes used outside the project refused (unless
// StopOthers). Nothing is changed.
func (s *Service) PlanRestore(ctx context.Context, p *Project, req RestoreRequest) (*PlannedRestore, error) {
	o := req.Options
	lock, err := p.lock(ctx, req.LockTimeout, "restore "+o.Manifest.ID)
	if err != nil {
		return nil, err
	}
	o.Timeouts, o.Reporter, o.Hooks, o.NoDirect = p.Timeouts(), s.Reporter, backup.LifecycleHooks(s.Engine), NoDirect()
	rp, err := backup.PlanRestore(ctx, s.Engine, o)
	if err != nil {
		lock.Release()
		return nil, err
	}
	return &PlannedRestore{Plan: rp, s: s, p: p, opts: o, lock: lock}, nil
}

// Release gives the project lock back.
func (r *PlannedRestore) Release() { r.lock.Release() }

// ReplacesData reports whether the restore replaces data that exists now
// (and a backup first could save it): some volume it writes exists.
func (r *PlannedRestore) ReplacesData() bool { return len(r.Plan.Create) < len(r.Plan.Volumes) }

// BackupFirst backs up the project as it is now, tagged pre-restore, so
// that the restore can be undone, and records the run; it returns the new
// backup's ID. A failure means the restore must not go ahead.
func (r *PlannedRestore) BackupFirst(ctx context.Context) (string, error) {
	s, p := r.s, r.p
	const tag = "pre-restore"
	res, err := backup.Run(ctx, s.Engine, p.BackupOptions(s.Engine, tag, s.Reporter))
	err = Interrupted(ctx, "backup", err)
	if rerr := s.RecordRun(p, tag, res, err, ctx.Err() != nil); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return "", fmt.Errorf("the backup of the current data failed, so nothing was restored: %w; fix it, or restore without it: --backup-first=false", err)
	}
	return res.ID, nil
}

// Run restores: the services are stopped, the volumes written and the
// services brought back on every path; the restore is recorded in the
// history and reported (notifications, the services-down record).
func (r *PlannedRestore) Run(ctx context.Context) (*backup.RestoreResult, error) {
	s, p := r.s, r.p
	res, runErr := backup.Restore(ctx, s.Engine, r.opts, r.Plan)
	runErr = Interrupted(ctx, "restore", runErr)
	rec := state.Restore{ID: archive.NewID(res.Started), BackupID: r.opts.Manifest.ID, Started: res.Started, Finished: res.Finished, Volumes: res.Volumes, Status: state.StatusSuccess}
	if runErr != nil {
		rec.Status = state.StatusFailed
		if ctx.Err() != nil {
			rec.Status = state.StatusInterrupted
		}
		rec.Error = text.OneLine(runErr.Error())
	}
	if err := state.Update(p.StatePath, func(f *state.File) error { f.RecordRestore(rec); return nil }); err != nil {
		runErr = errors.Join(runErr, err)
	}
	ReportRestore(ctx, p, rec, res, runErr, s.warn)
	return res, runErr
}
