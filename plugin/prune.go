package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/archive"
	"github.com/docker-autobackup/docker-autobackup/retention"
	"github.com/docker-autobackup/docker-autobackup/state"
)

type pruneOptions struct {
	dryRun bool
}

func newPruneCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	var o pruneOptions
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Delete backups older than retention_days, always keeping the keep_min newest",
		Long: `Delete complete backups that started more than retention_days ago, judged
by the start time in each backup's manifest (not the files' mtime). The
keep_min newest successful backups are kept however old, and the newest
successful backup is never deleted. Backups with an unreadable manifest are
reported and never deleted. Leftovers of interrupted runs older than a day are
removed too. This also happens after every successful "docker autobackup run".`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPrune(cmd.Context(), dockerCli.Out(), g, o, time.Now())
		},
	}
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "Show what would be deleted and delete nothing")
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
	return errors.Join(prune(env, now, o.dryRun, w, ""), pruneRemote(ctx, env, now, o.dryRun, w, ""))
}

// pruneAfterRun applies retention after a successful backup, with the
// project lock still held. The backup is safe whatever happens here, so a
// failure is a warning, not a failed run.
func pruneAfterRun(ctx context.Context, env *projectEnv, stderr io.Writer) {
	if err := prune(env, time.Now(), false, stderr, "autobackup: "); err != nil {
		fmt.Fprintf(stderr, "autobackup: WARNING retention: %v\nTry: docker autobackup prune --dry-run\n", err)
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
	rc := env.remoteConfig()
	policy := retention.Policy{RetentionDays: env.Settings.RetentionDays, KeepMin: env.Settings.KeepMin, Unsuccessful: map[string]bool{}}
	if rc.RetentionDays > 0 {
		policy.RetentionDays = rc.RetentionDays
	}
	if rc.KeepMin > 0 {
		policy.KeepMin = rc.KeepMin
	}
	var entries []archive.Entry
	for _, l := range listed {
		e := archive.Entry{ID: l.ID, Err: l.Err}
		if l.Index != nil {
			e.Manifest = &archive.Manifest{ID: l.ID, Started: l.Index.Started}
		}
		if b, ok := f.FindBackup(l.ID); ok && b.Status != state.StatusSuccess {
			policy.Unsuccessful[l.ID] = true
		}
		entries = append(entries, e)
	}
	d := retention.Decide(now, entries, policy)
	where := fmt.Sprintf("remote %s", t.Store)
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

// prune decides with retention.Decide and, unless dryRun, deletes and
// records the deletion in the state file. Lines written to w start with
// prefix.
func prune(env *projectEnv, now time.Time, dryRun bool, w io.Writer, prefix string) error {
	// The state on env may predate the run that just finished.
	f, err := state.Load(env.StatePath)
	if err != nil {
		return err
	}
	entries, err := archive.List(env.BackupDir)
	if err != nil {
		return err
	}
	r := env.Settings
	policy := retention.Policy{RetentionDays: r.RetentionDays, KeepMin: r.KeepMin, Unsuccessful: map[string]bool{}}
	for _, e := range entries {
		if b, ok := f.FindBackup(e.ID); ok && b.Status != state.StatusSuccess {
			policy.Unsuccessful[e.ID] = true
		}
	}
	d := retention.Decide(now, entries, policy)
	for _, it := range d.Broken {
		fmt.Fprintf(w, "%sWARNING backup %s is not deleted: %v; check it: docker autobackup verify %s\n", prefix, it.ID, it.Err, it.ID)
	}
	if dryRun {
		for _, it := range d.Delete {
			fmt.Fprintf(w, "%swould delete %s: %s\n", prefix, it.ID, it.Reason)
		}
		for _, it := range d.Keep {
			fmt.Fprintf(w, "%skeep %s: %s\n", prefix, it.ID, it.Reason)
		}
		if len(d.Delete) == 0 {
			fmt.Fprintf(w, "%sNothing to delete (retention_days = %d, keep_min = %d).\n", prefix, r.RetentionDays, r.KeepMin)
		}
		fmt.Fprintf(w, "%s(dry run: nothing was deleted; leftovers of interrupted runs older than a day would be removed too)\n", prefix)
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
	partials, partErr := archive.CleanPartials(env.BackupDir, retention.LeftoverAge)
	for _, p := range partials {
		fmt.Fprintf(w, "%sremoved leftover of an interrupted run: %s\n", prefix, env.relPath(p))
	}
	var recordErr error
	if len(deleted) > 0 {
		recordErr = state.Update(env.StatePath, func(f *state.File) error {
			f.RecordPrune(state.Prune{
				Time:    now,
				Deleted: deleted,
				Reason:  fmt.Sprintf("retention_days = %d, keep_min = %d", r.RetentionDays, r.KeepMin),
			})
			return nil
		})
		if recordErr != nil {
			recordErr = fmt.Errorf("record the deletion of %d backup(s) in %s: %w", len(deleted), env.StatePath, recordErr)
		}
	}
	if prefix == "" && len(deleted)+len(partials) == 0 && applyErr == nil && partErr == nil {
		fmt.Fprintf(w, "Nothing to delete: %d backup(s), retention_days = %d, keep_min = %d.\n", len(entries), r.RetentionDays, r.KeepMin)
	}
	return errors.Join(applyErr, partErr, recordErr)
}
