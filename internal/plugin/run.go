package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

type runOptions struct {
	tag         string
	dryRun      bool
	quiet       bool
	lockTimeout time.Duration
	ifOlder     time.Duration
	ifEnabled   bool
}

func newRunCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS]",
		Short: "Back up the project's volumes now",
		Long: `Back up every named volume of the project: stop the services in reverse
dependency order, copy the volumes, start the services again in dependency
order and wait until they are healthy. Prints the new backup's ID on stdout;
everything else goes to stderr, so id=$(docker autobackup run) works.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), dockerCli, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.tag, "tag", "", "Label the backup, e.g. pre-upgrade")
	f.BoolVar(&o.dryRun, "dry-run", false, "Print the plan and change nothing")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Print only the backup ID")
	f.BoolVar(&o.ifEnabled, "if-enabled", false, "Do nothing (exit 0) unless scheduled backups are enabled; for host scheduler entries")
	f.DurationVar(&o.ifOlder, "if-older-than", 0, "Skip (exit 0, print the last ID) when a successful backup is more recent than this, e.g. 1h")
	lockTimeoutFlag(f, &o.lockTimeout)
	return cmd
}

// withSignals cancels the returned context on SIGINT or SIGTERM. Further
// signals are swallowed (and announced) so that a second Ctrl-C cannot
// abandon services mid-restart.
func withSignals(ctx context.Context, stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				n++
				if n == 1 {
					fmt.Fprintf(stderr, "\nautobackup: %s received: aborting; services that were stopped are being started again\n", signalName(s))
					cancel(signalCause{s})
				} else {
					fmt.Fprintf(stderr, "\nautobackup: still bringing services back; please wait. Abandoning this leaves services stopped; if you must: kill -9 %d, then docker compose start\n", os.Getpid())
				}
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// signalCause is the cancellation cause of a command stopped by a signal.
type signalCause struct{ sig os.Signal }

func (c signalCause) Error() string { return "interrupted by " + signalName(c.sig) }

func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT (Ctrl-C)"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// exitCode is the shell's exit code for a command a signal stopped: 130
// for SIGINT (and a cancellation without a signal), 143 for SIGTERM.
func signalExitCode(cause error) int {
	var sc signalCause
	if errors.As(cause, &sc) && sc.sig == syscall.SIGTERM {
		return 143
	}
	return 130
}

func runRun(ctx context.Context, dockerCli command.Cli, g *globalOptions, o runOptions) error {
	stderr := dockerCli.Err()
	ctx, stop := withSignals(ctx, stderr)
	defer stop()

	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	out := newRunOutput()
	s := &app.Service{Reporter: out.tee(g.reporter(stderr, o.quiet))}
	eng, err := newEngine(ctx, dockerCli)
	if err != nil {
		if !o.dryRun && (!o.ifEnabled || env.Settings.Enabled) {
			s.BackupNotStarted(ctx, env, err)
		}
		return err
	}
	s.Engine = eng
	if o.dryRun {
		return printPlan(ctx, dockerCli.Out(), eng, env)
	}
	if o.ifEnabled && !env.Settings.Enabled {
		if !o.quiet {
			fmt.Fprintln(stderr, "autobackup: scheduled backups are disabled for this project; skipping (turn them on: docker autobackup enable)")
		}
		return nil
	}
	if o.ifOlder > 0 {
		if id, age, ok := env.RecentBackup(time.Now()); ok && age < o.ifOlder {
			if !o.quiet {
				fmt.Fprintf(stderr, "autobackup: last successful backup %s is %s old (< %s); skipping\n", id, age.Round(time.Second), o.ifOlder)
			}
			_, err := fmt.Fprintln(dockerCli.Out(), id)
			return err
		}
	}
	// Through the reporter, so that --progress json is JSON throughout.
	s.Info("autobackup: backing up project %s into %s", env.Project.Name, env.RelPath(env.BackupDir))
	res, runErr := s.Backup(ctx, env, app.BackupRequest{Tag: o.tag, LockTimeout: o.lockTimeout, Holder: "run", Log: out.String})
	if res == nil {
		return runErr // the project lock was not taken: nothing happened
	}
	if runErr != nil {
		if _, down := app.RestartFailed(runErr); down && res.Result.Path != "" {
			// The data is safe even though services are not back.
			fmt.Fprintln(dockerCli.Out(), res.Result.ID)
		}
		return runErr
	}
	r := res.Result
	if res.UploadErr != nil {
		fmt.Fprintln(dockerCli.Out(), r.ID)
		return localOnlyError(res.UploadErr)
	}
	s.Info("autobackup: backup %s complete (%s): %d volume(s), %s, downtime %s, total %s",
		r.ID, r.Mode, len(r.Volumes), humanBytes(r.SizeBytes), r.Downtime.Round(time.Millisecond), r.Finished.Sub(r.Started).Round(time.Millisecond))
	_, err = fmt.Fprintln(dockerCli.Out(), r.ID)
	return err
}

// printPlan shows what a run would do and changes nothing.
func printPlan(ctx context.Context, w io.Writer, eng engine.Engine, env *app.Project) error {
	containers, err := eng.Containers(ctx, env.Project.Name)
	if err != nil {
		return err
	}
	plan, err := backup.MakePlan(env.Project, containers, env.Keep(), env.SkipVolumes())
	if err != nil {
		return err
	}
	last, _ := env.LastSizes()
	fmt.Fprintf(w, "Plan for project %s (dry run: nothing is changed)\n", plan.Project)
	fmt.Fprintf(w, "  backup directory: %s\n", env.BackupDir)
	probe, err := eng.ProbeHelper(ctx)
	if err != nil {
		return err
	}
	mode, why := backup.ChooseMode(env.Settings.Snapshot, probe)
	fmt.Fprintf(w, "  snapshot mode: %s (%s)\n", mode, why)
	if mode == backup.ModeStaged {
		fmt.Fprintln(w, "    (falls back to stream if a staging volume lacks free space)")
	}
	fmt.Fprintln(w, "  volumes to back up:")
	if len(plan.Volumes) == 0 {
		fmt.Fprintln(w, "    (none)")
	}
	for _, v := range plan.Volumes {
		size := "size unknown (no earlier backup)"
		if n, ok := last[v.Name]; ok {
			size = "≈" + humanBytes(n) + " at the last backup"
		}
		ext := ""
		if v.External {
			ext = ", external"
		}
		status := ""
		if _, err := eng.Volume(ctx, v.Name); errors.Is(err, engine.ErrNotFound) {
			status = "  MISSING on the engine: the run will fail"
		}
		if v.Skip != "" {
			fmt.Fprintf(w, "    %-30s skipped: %s\n", v.Name, v.Skip)
			continue
		}
		fmt.Fprintf(w, "    %-30s used by %s%s; %s%s\n", v.Name, strings.Join(v.Services, ", "), ext, size, status)
	}
	if len(plan.Skipped) > 0 {
		fmt.Fprintln(w, "  not backed up (not named volumes):")
		for _, m := range plan.Skipped {
			src := ""
			if m.Source != "" {
				src = " " + m.Source + " ->"
			}
			fmt.Fprintf(w, "    %s: %s%s %s\n", m.Service, m.Type, src, m.Target)
		}
	}
	if rc := env.RemoteConfig(); rc.URL != "" {
		enc := "NOT encrypted (set remote.encrypt_to)"
		if rc.EncryptTo != "" {
			enc = "encrypted with age"
		}
		fmt.Fprintf(w, "  then uploaded to: %s, %s, after the services are back (the bucket is checked before anything stops)\n", rc.URL, enc)
	}
	fmt.Fprintf(w, "  stop order:  %s\n", orderString(plan.StopOrder, "(none: no running service to stop)"))
	fmt.Fprintf(w, "  start order: %s\n", orderString(plan.StartOrder, "(none: nothing is stopped)"))
	for svc, why := range plan.Kept {
		fmt.Fprintf(w, "  kept running: %s (%s)\n", svc, why)
	}
	if len(plan.NotRunning) > 0 {
		fmt.Fprintf(w, "  left alone (not running): %s\n", strings.Join(plan.NotRunning, ", "))
	}
	return nil
}

func orderString(levels [][]string, none string) string {
	if len(levels) == 0 {
		return none
	}
	parts := make([]string, len(levels))
	for i, l := range levels {
		parts[i] = strings.Join(l, " + ")
	}
	return strings.Join(parts, " → ")
}

var _ progress.Reporter = (*printer)(nil)
