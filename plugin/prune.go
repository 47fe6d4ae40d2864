package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	return prune(env, now, o.dryRun, w, "")
}

// pruneAfterRun applies retention after a successful backup, with the
// project lock still held. The backup is safe whatever happens here, so a
// failure is a warning, not a failed run.
func pruneAfterRun(ctx context.Context, env *projectEnv, eng *engine.Docker, stderr io.Writer) {
	if err := prune(env, time.Now(), false, stderr, "autobackup: "); err != nil {
		fmt.Fprintf(stderr, "autobackup: WARNING retention: %v\nTry: docker autobackup prune --dry-run\n", err)
	}
	if eng != nil {
		collectStaging(ctx, eng, stderr, "autobackup: ")
	}
}

// collectStaging removes the staging volumes (of any project on this
// engine) whose source volume is gone, and says so.
func collectStaging(ctx context.Context, eng *engine.Docker, w io.Writer, prefix string) {
	removed, err := eng.CollectStaging(ctx)
	for _, v := range removed {
		fmt.Fprintf(w, "%sremoved staging volume %s: its volume no longer exists\n", prefix, v)
	}
	if err != nil {
		fmt.Fprintf(w, "%sWARNING %v\n", prefix, err)
	}
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
	all, err := env.backups()
	if err != nil {
		return err
	}
	// Backups another host took of a project of the same name (a shared
	// network folder) are that host's to prune: its retention may differ.
	var entries []archive.Entry
	for _, e := range all {
		if h := e.Host(); h != "" && h != archive.Hostname() {
			if dryRun {
				fmt.Fprintf(w, "%skeep %s: taken on host %s, which prunes its own backups\n", prefix, e.ID, h)
			}
			continue
		}
		entries = append(entries, e)
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
		fmt.Fprintf(w, "%s(dry run: nothing was deleted; leftovers of interrupted runs that no running backup owns would be removed too)\n", prefix)
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
