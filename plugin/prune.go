package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/archive"
	"github.com/docker-autobackup/docker-autobackup/engine"
	"github.com/docker-autobackup/docker-autobackup/retention"
	"github.com/docker-autobackup/docker-autobackup/state"
)

type pruneOptions struct {
	dryRun bool
	force  bool
}

func newPruneCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	var o pruneOptions
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Delete the backups that no retention rule keeps",
		Long: `Delete the complete backups that no retention rule keeps. A backup is kept
when any rule keeps it:
  retention_days N   every backup younger than N days (default 7 while no
                     keep_last/hourly/daily/weekly/monthly/yearly is set)
  keep_last N        the N newest successful backups
  keep_hourly N      the newest successful backup of each of the last N
  keep_daily N       hours, days, ISO weeks (Monday to Sunday), months and
  keep_weekly N      years that have one, in the host's time zone; a rule
  keep_monthly N     that finds fewer than N keeps the oldest backup too
  keep_yearly N      (as restic's forget and borg's prune do)
  keep_tagged N      the N newest tagged backups (run --tag); tagged backups
                     then take no part in keep_last and the calendar rules
  keep_min N         the N newest successful backups, however old (default 3)
Ages and calendar periods come from the start time in each backup's manifest,
not the files' mtime. The newest successful backup is never deleted. Backups
recorded as failed, or that "docker autobackup verify" found corrupt, count for
no rule but retention_days. Backups with an unreadable manifest are reported
and never deleted.

When the newest successful backup is empty, or holds less than prune_guard
(default 0.5) of the uncompressed data of the one before, nothing is deleted:
check that backup first. --force prunes anyway; prune_guard 0 turns the guard
off.

Leftovers of interrupted runs older than a day are removed too. All this also
happens after every successful "docker autobackup run".

Example (keep 7 daily, 4 weekly and 12 monthly backups):
  docker autobackup config set keep_daily 7
  docker autobackup config set keep_weekly 4
  docker autobackup config set keep_monthly 12
  docker autobackup prune --dry-run`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := runPrune(cmd.Context(), dockerCli.Out(), g, o, time.Now()); err != nil {
				return err
			}
			// Staging copies of volumes that are gone: best effort, the
			// prune itself needs no engine.
			if !o.dryRun {
				if eng, err := newEngine(cmd.Context(), dockerCli); err == nil {
					collectStaging(cmd.Context(), eng, dockerCli.Err(), "")
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "Show every backup with the rule that keeps it or the reason it goes; delete nothing")
	cmd.Flags().BoolVar(&o.force, "force", false, "Prune even when the newest backup looks suspicious (see prune_guard)")
	return cmd
}

func runPrune(ctx context.Context, w io.Writer, g *globalOptions, o pruneOptions, now time.Time) error {
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	if !o.dryRun {
		lock, err := state.Acquire(ctx, env.Dir, env.Settings.LockTimeout, "prune")
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	return errors.Join(prune(env, now, o, w, ""), pruneRemote(ctx, env, now, o.dryRun, w, ""))
}

// pruneAfterRun applies retention after a successful backup, with the
// project lock still held. The backup is safe whatever happens here, so a
// failure is a warning, not a failed run.
func pruneAfterRun(ctx context.Context, env *projectEnv, eng engine.Engine, stderr io.Writer) {
	if err := prune(env, time.Now(), pruneOptions{}, stderr, "autobackup: "); err != nil {
		fmt.Fprintf(stderr, "autobackup: WARNING retention: %v\nTry: docker autobackup prune --dry-run\n", err)
	}
	if eng != nil {
		collectStaging(ctx, eng, stderr, "autobackup: ")
	}
	if err := pruneRemote(ctx, env, time.Now(), false, stderr, "autobackup: "); err != nil {
		fmt.Fprintf(stderr, "autobackup: WARNING remote retention: %v\nTry: docker autobackup prune --dry-run\n", err)
	}
}

// pruneRemote applies the remote's retention (the retention keys of
// [remote], else those of [settings]) to the remote backups, with the
// same rules as the local folder's. Objects under Object Lock are
// reported and the backup is not counted as deleted.
func pruneRemote(ctx context.Context, env *projectEnv, now time.Time, dryRun bool, w io.Writer, prefix string) error {
	t, err := env.openTarget()
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
	rc := env.remoteConfig()
	policy := retentionPolicy(env.Settings, f, entries)
	if rc.RetentionDays > 0 {
		policy.RetentionDays = rc.RetentionDays
	}
	if rc.KeepMin > 0 {
		policy.KeepMin = rc.KeepMin
	}
	if err := policy.Validate(); err != nil {
		return policyError(err)
	}
	d := retention.Decide(now, entries, policy)
	where := fmt.Sprintf("remote %s", t.Store)
	if d.Stopped != "" {
		fmt.Fprintf(w, "%sWARNING pruning of %s stopped: %s; nothing is deleted there\n", prefix, where, d.Stopped)
		return nil
	}
	for _, it := range d.Broken {
		fmt.Fprintf(w, "%sWARNING remote backup %s is not deleted: %v\n", prefix, it.ID, it.Err)
	}
	if dryRun {
		for _, it := range d.Delete {
			fmt.Fprintf(w, "%swould delete from %s: %s: %s\n", prefix, where, it.ID, it.Reason)
		}
		for _, it := range d.Keep {
			fmt.Fprintf(w, "%skeep on %s: %s: %s\n", prefix, where, it.ID, it.Reason)
		}
		return nil
	}
	var deleted []string
	var errs []error
	for _, it := range d.Delete {
		locked, err := t.Delete(ctx, it.ID)
		switch {
		case len(locked) > 0:
			fmt.Fprintf(w, "%sremote backup %s is past retention but locked (Object Lock): %s kept until the lock expires\n", prefix, it.ID, strings.Join(locked, ", "))
		case err != nil:
			errs = append(errs, fmt.Errorf("delete remote backup %s: %w", it.ID, err))
		default:
			deleted = append(deleted, it.ID)
			fmt.Fprintf(w, "%sdeleted from %s: %s: %s\n", prefix, where, it.ID, it.Reason)
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
	if prefix == "" && len(d.Delete) == 0 && len(errs) == 0 {
		fmt.Fprintf(w, "Nothing to delete on %s: %d backup(s), retention_days = %d, keep_min = %d.\n", where, len(listed), policy.RetentionDays, policy.KeepMin)
	}
	return errors.Join(errs...)
}

// collectStaging removes the staging volumes (of any project on this
// engine) whose source volume is gone, and says so.
func collectStaging(ctx context.Context, eng engine.Engine, w io.Writer, prefix string) {
	removed, err := eng.CollectStaging(ctx)
	for _, v := range removed {
		fmt.Fprintf(w, "%sremoved staging volume %s: its volume no longer exists\n", prefix, v)
	}
	if err != nil {
		fmt.Fprintf(w, "%sWARNING %v\n", prefix, err)
	}
}

// retentionPolicy is the local backup directory's policy: the settings,
// and what autobackup.toml knows about each backup in entries.
func retentionPolicy(r state.Resolved, f *state.File, entries []archive.Entry) retention.Policy {
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

// policyError explains an invalid combination of retention settings.
func policyError(err error) error {
	return usageError(fmt.Errorf("%w (see: docker autobackup config)", err))
}

// prune decides with retention.Decide and, unless o.dryRun, deletes and
// records the deletion in the state file. Lines written to w start with
// prefix.
func prune(env *projectEnv, now time.Time, o pruneOptions, w io.Writer, prefix string) error {
	// The state on env may predate the run that just finished.
	f, err := state.Load(env.StatePath)
	if err != nil {
		return err
	}
	all, err := env.backups()
	if err != nil {
		return err
	}
	// Backups another host took of a project of the same name (a shared
	// network folder) are that host's to prune: its retention may differ.
	var entries []archive.Entry
	for _, e := range all {
		if h := e.Host(); h != "" && h != archive.Hostname() {
			if o.dryRun {
				fmt.Fprintf(w, "%skeep %s: taken on host %s, which prunes its own backups\n", prefix, e.ID, h)
			}
			continue
		}
		entries = append(entries, e)
	}
	policy := retentionPolicy(env.Settings, f, entries)
	if err := policy.Validate(); err != nil {
		return policyError(err)
	}
	if o.force {
		policy.Guard = 0
	}
	d := retention.Decide(now, entries, policy)
	for _, it := range d.Broken {
		fmt.Fprintf(w, "%sWARNING backup %s is not deleted: %v; check it: docker autobackup verify %s\n", prefix, it.ID, it.Err, it.ID)
	}
	if d.Stopped != "" {
		fmt.Fprintf(w, "%sWARNING pruning stopped: %s; nothing is deleted.\n%sCheck it: docker autobackup verify %s. If the data really shrank: docker autobackup prune --force\n",
			prefix, d.Stopped, prefix, d.Suspect)
	}
	if o.dryRun {
		printDecision(w, prefix, policy, d)
		return nil
	}

	deleted, applyErr := retention.Apply(env.BackupDir, d)
	reasons := map[string]string{}
	for _, it := range d.Delete {
		reasons[it.ID] = it.Reason
	}
	for _, id := range deleted {
		fmt.Fprintf(w, "%sdeleted backup %s: %s\n", prefix, id, reasons[id])
	}
	partials, partErr := archive.CleanPartials(env.BackupDir)
	for _, p := range partials {
		fmt.Fprintf(w, "%sremoved leftover of an interrupted run: %s\n", prefix, env.relPath(p))
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
	if d.Stopped != "" && prefix == "" {
		// Asked for by name, a prune that did not happen is a failure.
		stopErr = exitCodeErr{code: ExitFailed, err: fmt.Errorf("pruning stopped: %s", d.Stopped)}
	}
	if prefix == "" && d.Stopped == "" && len(deleted)+len(partials) == 0 && applyErr == nil && partErr == nil {
		fmt.Fprintf(w, "Nothing to delete: %d backup(s); %s.\n", len(entries), policy)
	}
	return errors.Join(applyErr, partErr, recordErr, stopErr)
}

// printDecision lists every backup, newest first, with what prune does
// with it and why.
func printDecision(w io.Writer, prefix string, policy retention.Policy, d retention.Decision) {
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
	fmt.Fprintf(w, "%sPolicy: %s (calendar periods in %s)\n", prefix, policy, policy.Location)
	for _, l := range lines {
		when := "start time unknown"
		if !l.it.Started.IsZero() {
			when = l.it.Started.In(policy.Location).Format("2006-01-02 15:04 MST")
		}
		fmt.Fprintf(w, "%s%s %s (%s): %s\n", prefix, l.verb, l.it.ID, when, l.it.Reason)
	}
	if len(d.Delete) == 0 {
		fmt.Fprintf(w, "%sNothing to delete.\n", prefix)
	}
	fmt.Fprintf(w, "%s(dry run: nothing was deleted; leftovers of interrupted runs that no running backup owns would be removed too)\n", prefix)
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
