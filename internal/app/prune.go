package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/retention"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// ErrPruneStopped marks a prune the prune guard stopped.
var ErrPruneStopped = errors.New("pruning stopped")

// PruneRequest is one application of the retention rules.
type PruneRequest struct {
	DryRun bool // decide and report, delete nothing
	Force  bool // prune even when the prune guard would stop it
	// Explicit: asked for by name (the prune command), not after a run.
	// A prune the guard stopped is then a failure, and a prune with
	// nothing to delete says so.
	Explicit bool
}

// Prune applies the retention rules to the project's local backups and to
// its remote ones, then (unless a dry run, and with an engine) removes the
// staging volumes whose volume is gone. It holds the project lock unless
// it is a dry run.
func (s *Service) Prune(ctx context.Context, p *Project, req PruneRequest) error {
	if !req.DryRun {
		lock, err := p.lock(ctx, -1, "prune")
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	err := errors.Join(s.prune(p, s.now(), req), s.PruneRemote(ctx, p, req))
	if !req.DryRun && s.Engine != nil {
		s.collectStaging(ctx)
	}
	return err
}

// PruneAfterRun applies retention after a successful backup, with the
// project lock still held. The backup is safe whatever happens here, so a
// failure is a warning, not a failed run.
func (s *Service) PruneAfterRun(ctx context.Context, env *Project) {
	if err := s.prune(env, s.now(), PruneRequest{}); err != nil {
		s.warn(fmt.Sprintf("retention: %v\nTry: docker autobackup prune --dry-run", err))
	}
	if s.Engine != nil {
		s.collectStaging(ctx)
	}
	if err := s.PruneRemote(ctx, env, PruneRequest{}); err != nil {
		s.warn(fmt.Sprintf("remote retention: %v\nTry: docker autobackup prune --dry-run", err))
	}
}

// PruneRemote applies the remote's retention (the retention keys of
// [remote], else those of [settings]) to the remote backups, with the
// same rules as the local folder's. Objects under Object Lock are
// reported and the backup is not counted as deleted.
func (s *Service) PruneRemote(ctx context.Context, env *Project, o PruneRequest) error {
	now := s.now()
	dryRun := o.DryRun
	t, err := env.OpenTarget()
	if t == nil || err != nil {
		return err
	}
	listed, err := t.List(ctx)
	if err != nil {
		return err
	}
	f, err := state.Load(env.StatePath)
	if err != nil {
		return err
	}
	var entries []archive.Entry
	for _, l := range listed {
		e := archive.Entry{ID: l.ID, Err: l.Err, Project: env.Project.Name}
		if l.Index != nil {
			// The index holds what retention needs: the time, the tag, and
			// the stored size, which the prune guard compares between
			// consecutive remote backups.
			e.Manifest = &archive.Manifest{ID: l.ID, Project: l.Index.Project, Tag: l.Index.Tag, Started: l.Index.Started,
				Volumes: []archive.Volume{{Name: "all", TarBytes: l.Index.SizeBytes, ArchiveBytes: l.Index.SizeBytes}}}
		}
		entries = append(entries, e)
	}
	// The same rules as the local folder's, with [remote]'s own
	// retention_days and keep_min where set.
	rc := env.RemoteConfig()
	policy := RetentionPolicy(env.Settings, f, entries)
	if rc.RetentionDays > 0 {
		policy.RetentionDays = rc.RetentionDays
	}
	if rc.KeepMin > 0 {
		policy.KeepMin = rc.KeepMin
	}
	if err := policy.Validate(); err != nil {
		return PolicyError(err)
	}
	d := retention.Decide(now, entries, policy)
	where := fmt.Sprintf("remote %s", t.Store)
	if d.Stopped != "" {
		s.warn(fmt.Sprintf("pruning of %s stopped: %s; nothing is deleted there", where, d.Stopped))
		return nil
	}
	for _, it := range d.Broken {
		s.warn(fmt.Sprintf("remote backup %s is not deleted: %v", it.ID, it.Err))
	}
	if dryRun {
		for _, it := range d.Delete {
			s.Info("would delete from %s: %s: %s", where, it.ID, it.Reason)
		}
		for _, it := range d.Keep {
			s.Info("keep on %s: %s: %s", where, it.ID, it.Reason)
		}
		return nil
	}
	var deleted []string
	var errs []error
	for _, it := range d.Delete {
		locked, err := t.Delete(ctx, it.ID)
		switch {
		case len(locked) > 0:
			s.Info("remote backup %s is past retention but locked (Object Lock): %s kept until the lock expires", it.ID, strings.Join(locked, ", "))
		case err != nil:
			errs = append(errs, fmt.Errorf("delete remote backup %s: %w", it.ID, err))
		default:
			deleted = append(deleted, it.ID)
			s.Info("deleted from %s: %s: %s", where, it.ID, it.Reason)
		}
	}
	if len(deleted) > 0 {
		err := state.Update(env.StatePath, func(f *state.File) error {
			for _, id := range deleted {
				if b, ok := f.FindBackup(id); ok {
					b.RemotePruned = now.UTC().Truncate(time.Second)
				}
			}
			f.Prunes = append(f.Prunes, state.Prune{Time: now.UTC().Truncate(time.Second), Deleted: deleted,
				Reason: fmt.Sprintf("remote: retention_days = %d, keep_min = %d", policy.RetentionDays, policy.KeepMin)})
			return nil
		})
		errs = append(errs, err)
	}
	if o.Explicit && len(d.Delete) == 0 && len(errs) == 0 {
		s.Info("Nothing to delete on %s: %d backup(s), retention_days = %d, keep_min = %d.", where, len(listed), policy.RetentionDays, policy.KeepMin)
	}
	return errors.Join(errs...)
}

// collectStaging removes the staging volumes (of any project on this
// engine) whose source volume is gone, and says so.
func (s *Service) collectStaging(ctx context.Context) {
	removed, err := s.Engine.CollectStaging(ctx)
	for _, v := range removed {
		s.Info("removed staging volume %s: its volume no longer exists", v)
	}
	if err != nil {
		s.warn(err.Error())
	}
}

// RetentionPolicy is the local backup directory's policy: the settings,
// and what autobackup.toml knows about each backup in entries.
func RetentionPolicy(r state.Resolved, f *state.File, entries []archive.Entry) retention.Policy {
	p := retention.Policy{
		RetentionDays: r.RetentionDays,
		KeepMin:       r.KeepMin,
		KeepLast:      r.KeepLast,
		KeepHourly:    r.KeepHourly,
		KeepDaily:     r.KeepDaily,
		KeepWeekly:    r.KeepWeekly,
		KeepMonthly:   r.KeepMonthly,
		KeepYearly:    r.KeepYearly,
		KeepTagged:    r.KeepTagged,
		Guard:         r.PruneGuard,
		Location:      time.Local,
		Unsuccessful:  map[string]bool{},
		Unverified:    map[string]string{},
	}
	for _, e := range entries {
		b, ok := f.FindBackup(e.ID)
		switch {
		case !ok:
		case b.Status != state.StatusSuccess:
			p.Unsuccessful[e.ID] = true
		case b.VerifyError != "":
			p.Unverified[e.ID] = "docker autobackup verify found: " + b.VerifyError
		}
	}
	return p
}

// PolicyError explains an invalid combination of retention settings.
func PolicyError(err error) error {
	return configError(fmt.Errorf("%w (see: docker autobackup config)", err))
}

// prune decides with retention.Decide and, unless a dry run, deletes and
// records the deletion in the history.
func (s *Service) prune(env *Project, now time.Time, o PruneRequest) error {
	// The state on env may predate the run that just finished.
	f, err := state.Load(env.StatePath)
	if err != nil {
		return err
	}
	all, err := env.Backups()
	if err != nil {
		return err
	}
	// Backups another host took of a project of the same name (a shared
	// network folder) are that host's to prune: its retention may differ.
	var entries []archive.Entry
	for _, e := range all {
		if h := e.Host(); h != "" && h != archive.Hostname() {
			if o.DryRun {
				s.Info("keep %s: taken on host %s, which prunes its own backups", e.ID, h)
			}
			continue
		}
		entries = append(entries, e)
	}
	policy := RetentionPolicy(env.Settings, f, entries)
	if err := policy.Validate(); err != nil {
		return PolicyError(err)
	}
	if o.Force {
		policy.Guard = 0
	}
	d := retention.Decide(now, entries, policy)
	for _, it := range d.Broken {
		s.warn(fmt.Sprintf("backup %s is not deleted: %v; check it: docker autobackup verify %s", it.ID, it.Err, it.ID))
	}
	if d.Stopped != "" {
		s.warn(fmt.Sprintf("pruning stopped: %s; nothing is deleted.\nCheck it: docker autobackup verify %s. If the data really shrank: docker autobackup prune --force", d.Stopped, d.Suspect))
	}
	if o.DryRun {
		s.printDecision(policy, d)
		return nil
	}

	deleted, applyErr := retention.Apply(env.BackupDir, d)
	reasons := map[string]string{}
	for _, it := range d.Delete {
		reasons[it.ID] = it.Reason
	}
	for _, id := range deleted {
		s.Info("deleted backup %s: %s", id, reasons[id])
	}
	partials, partErr := archive.CleanPartials(env.BackupDir)
	for _, p := range partials {
		s.Info("removed leftover of an interrupted run: %s", env.RelPath(p))
	}
	var recordErr error
	if len(deleted) > 0 {
		recordErr = state.Update(env.StatePath, func(f *state.File) error {
			f.RecordPrune(state.Prune{Time: now, Deleted: deleted, Reason: policy.String()})
			return nil
		})
		if recordErr != nil {
			recordErr = fmt.Errorf("record the deletion of %d backup(s) in %s: %w", len(deleted), env.StatePath, recordErr)
		}
	}
	var stopErr error
	if d.Stopped != "" && o.Explicit {
		// Asked for by name, a prune that did not happen is a failure.
		stopErr = fmt.Errorf("%w: %s", ErrPruneStopped, d.Stopped)
	}
	if o.Explicit && d.Stopped == "" && len(deleted)+len(partials) == 0 && applyErr == nil && partErr == nil {
		s.Info("Nothing to delete: %d backup(s); %s.", len(entries), policy)
	}
	return errors.Join(applyErr, partErr, recordErr, stopErr)
}

// printDecision lists every backup, newest first, with what prune does
// with it and why.
func (s *Service) printDecision(policy retention.Policy, d retention.Decision) {
	type line struct {
		verb string
		it   retention.Item
	}
	var lines []line
	for _, l := range []struct {
		verb  string
		items []retention.Item
	}{{"keep", d.Keep}, {"would delete", d.Delete}, {"held", d.Held}, {"broken", d.Broken}} {
		for _, it := range l.items {
			lines = append(lines, line{l.verb, it})
		}
	}
	slices.SortStableFunc(lines, func(a, b line) int {
		if c := b.it.Started.Compare(a.it.Started); c != 0 {
			return c
		}
		return -compareStrings(a.it.ID, b.it.ID)
	})
	s.Info("Policy: %s (calendar periods in %s)", policy, policy.Location)
	for _, l := range lines {
		when := "start time unknown"
		if !l.it.Started.IsZero() {
			when = l.it.Started.In(policy.Location).Format("2006-01-02 15:04 MST")
		}
		s.Info("%s %s (%s): %s", l.verb, l.it.ID, when, l.it.Reason)
	}
	if len(d.Delete) == 0 {
		s.Info("Nothing to delete.")
	}
	s.Info("(dry run: nothing was deleted; leftovers of interrupted runs that no running backup owns would be removed too)")
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
