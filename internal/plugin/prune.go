package plugin

import (
	"context"
	"io"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
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
			// Staging copies of volumes that are gone are collected too
			// when the engine answers: best effort, the prune itself needs
			// no engine.
			var eng engine.Engine
			if !o.dryRun {
				eng, _ = newEngine(cmd.Context(), dockerCli)
			}
			return runPrune(cmd.Context(), dockerCli.Out(), g, o, time.Now(), eng)
		},
	}
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "Show every backup with the rule that keeps it or the reason it goes; delete nothing")
	cmd.Flags().BoolVar(&o.force, "force", false, "Prune even when the newest backup looks suspicious (see prune_guard)")
	return cmd
}

// runPrune applies retention to the project's backups, listing on w what
// it keeps and deletes (a dry run: what it would).
func runPrune(ctx context.Context, w io.Writer, g *globalOptions, o pruneOptions, now time.Time, eng engine.Engine) error {
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	s := &app.Service{Engine: eng, Reporter: lineReporter(w), Now: func() time.Time { return now }}
	return s.Prune(ctx, env, app.PruneRequest{DryRun: o.dryRun, Force: o.force, Explicit: true})
}
