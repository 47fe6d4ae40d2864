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

	autobackup "github.com/docker-autobackup/docker-autobackup"
	"github.com/docker-autobackup/docker-autobackup/archive"
	"github.com/docker-autobackup/docker-autobackup/backup"
	"github.com/docker-autobackup/docker-autobackup/compose"
	"github.com/docker-autobackup/docker-autobackup/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
	"github.com/docker-autobackup/docker-autobackup/progress"
	"github.com/docker-autobackup/docker-autobackup/state"
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

// interruptedError is what a command stopped by a signal (or by the docker
// CLI closing the plugin's connection, which it does on Ctrl-C without a
// terminal) returns: one line saying what was interrupted and what state
// things are in, and the shell's exit code for the signal (130 for
// SIGINT, 143 for SIGTERM).
type interruptedError struct {
	what  string // "backup", "restore"
	cause error  // context.Cause of the command's context
	err   error  // the command's own error, for errors.Is/As
}

func (e interruptedError) Error() string {
	how := "interrupted"
	var sc signalCause
	if errors.As(e.cause, &sc) {
		how += " by " + signalName(sc.sig)
	}
	switch e.what {
	case "backup":
		return e.what + " " + how + ": nothing was kept; every service that was stopped is running again"
	}
	return e.what + " " + how + ": the volumes being restored may hold part of the backup; every service that was stopped is running again. Run the restore again to finish it"
}

func (e interruptedError) Unwrap() error { return e.err }

func (e interruptedError) exitCode() int {
	var sc signalCause
	if errors.As(e.cause, &sc) && sc.sig == syscall.SIGTERM {
		return 143
	}
	return 130
}

// interrupted turns the error of a command whose context was cancelled
// into an interruptedError, unless services are not back: that stays the
// urgent message it is.
func interrupted(ctx context.Context, what string, err error) error {
	var restart *compose.RestartError
	if err == nil || ctx.Err() == nil || errors.As(err, &restart) {
		return err
	}
	return interruptedError{what: what, cause: context.Cause(ctx), err: err}
}

func runRun(ctx context.Context, dockerCli command.Cli, g *globalOptions, o runOptions) error {
	stderr := dockerCli.Err()
	ctx, stop := withSignals(ctx, stderr)
	defer stop()

	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	eng, err := newEngine(ctx, dockerCli)
	if err != nil {
		if !o.dryRun && (!o.ifEnabled || env.Settings.Enabled) {
			reportNotStarted(ctx, env, err, warnTo(stderr))
		}
		return err
	}
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
		if id, age, ok := recentBackup(env, time.Now()); ok && age < o.ifOlder {
			if !o.quiet {
				fmt.Fprintf(stderr, "autobackup: last successful backup %s is %s old (< %s); skipping\n", id, age.Round(time.Second), o.ifOlder)
			}
			_, err := fmt.Fprintln(dockerCli.Out(), id)
			return err
		}
	}
	lockTimeout := env.Settings.LockTimeout
	if o.lockTimeout >= 0 {
		lockTimeout = o.lockTimeout
	}
	lock, err := state.Acquire(ctx, env.Dir, lockTimeout, "run")
	if err != nil {
		return err
	}
	defer lock.Release()

	pr := newPrinter(stderr, o.quiet)
	if !o.quiet {
		fmt.Fprintf(stderr, "autobackup: backing up project %s into %s\n", env.Project.Name, env.relPath(env.BackupDir))
	}
	out := newRunOutput()
	warn := warnTo(stderr)
	pingStart(ctx, env, warn)
	res, runErr := backup.Run(ctx, eng, env.backupOptions(eng, o.tag, out.tee(pr)))
	runErr = interrupted(ctx, "backup", runErr)
	if err := recordRun(env, o, res, runErr, ctx.Err() != nil); err != nil {
		runErr = errors.Join(runErr, err)
	}
	reportBackup(ctx, env, res, runErr, ctx.Err() != nil, out, warn)
	if runErr != nil {
		var restart *compose.RestartError
		if res.Path != "" && errors.As(runErr, &restart) {
			// The data is safe even though services are not back.
			fmt.Fprintln(dockerCli.Out(), res.ID)
		}
		return runErr
	}
	upErr := uploadBackups(ctx, env, stderr, "autobackup: ", o.quiet)
	pruneAfterRun(ctx, env, eng, stderr)
	if upErr != nil {
		fmt.Fprintln(dockerCli.Out(), res.ID)
		return localOnlyError(upErr)
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "autobackup: backup %s complete (%s): %d volume(s), %s, downtime %s, total %s\n",
			res.ID, res.Mode, len(res.Volumes), humanBytes(res.SizeBytes), res.Downtime.Round(time.Millisecond), res.Finished.Sub(res.Started).Round(time.Millisecond))
	}
	_, err = fmt.Fprintln(dockerCli.Out(), res.ID)
	return err
}

// backupOptions is how every backup of the project runs (run and daemon):
// settings, compose extensions and hooks applied.
func (e *projectEnv) backupOptions(eng engine.Engine, tag string, r progress.Reporter) backup.Options {
	return backup.Options{
		Project:     e.Project,
		Dir:         e.BackupDir,
		Tag:         tag,
		Level:       zstdLevel(e.Settings.CompressionLevel),
		Timeouts:    e.timeouts(),
		Reporter:    r,
		ToolVersion: autobackup.Version(),
		LastSizes:   lastSizes(e),
		LastArchive: lastArchiveSizes(e),
		Host:        archive.Hostname(),
		Keep:        e.keep(),
		SkipVolumes: e.skipVolumes(),
		Services:    e.Ext.Services,
		Hooks:       backup.LifecycleHooks(eng),
		Mode:        e.Settings.Snapshot,
		NoDirect:    noDirect(),
		Preflight:   e.remotePreflight,
	}
}

// noDirect says whether DOCKER_AUTOBACKUP_DIRECT=0 asks to move all data
// through the engine's API, never through a helper that writes into the
// backup folder itself (for engines that see the folder but must not
// write there).
func noDirect() bool { return os.Getenv("DOCKER_AUTOBACKUP_DIRECT") == "0" }

// recordRun writes the run into autobackup.toml. Preflight failures (nothing
// stopped, nothing written) are recorded as failed runs too: a backup that
// silently did not happen is what we promise never to do.
func recordRun(env *projectEnv, o runOptions, res *backup.Result, runErr error, interrupted bool) error {
	b := state.Backup{
		ID:              res.ID,
		Tag:             o.tag,
		Started:         res.Started,
		Finished:        res.Finished,
		Status:          state.StatusSuccess,
		DurationSeconds: round2(res.Finished.Sub(res.Started).Seconds()),
		DowntimeSeconds: round2(res.Downtime.Seconds()),
		SizeBytes:       res.SizeBytes,
	}
	for _, w := range res.Warnings {
		b.Warnings = append(b.Warnings, text.OneLine(w))
	}
	for name, d := range res.ServiceDowntime {
		if b.ServiceDowntime == nil {
			b.ServiceDowntime = map[string]float64{}
		}
		b.ServiceDowntime[name] = round2(d.Seconds())
	}
	for _, v := range res.Volumes {
		b.Volumes = append(b.Volumes, v.Name)
	}
	if res.Path != "" {
		b.Path = env.relPath(res.Path)
	}
	if runErr != nil {
		b.Status = state.StatusFailed
		if interrupted {
			b.Status = state.StatusInterrupted
		}
		b.Error = text.OneLine(runErr.Error())
	}
	return state.Update(env.StatePath, func(f *state.File) error {
		f.RecordBackup(b)
		return nil
	})
}

// recentBackup returns the newest complete successful backup and its age,
// judged by its manifest (the files must still be there).
func recentBackup(env *projectEnv, now time.Time) (string, time.Duration, bool) {
	entries, err := env.backups()
	if err != nil {
		return "", 0, false
	}
	for _, e := range entries {
		if e.Manifest == nil {
			continue
		}
		if b, ok := env.State.FindBackup(e.ID); ok && b.Status != state.StatusSuccess {
			continue
		}
		return e.ID, now.Sub(e.Manifest.Started), true
	}
	return "", 0, false
}

// zstdLevel maps the compression_level setting (1 fastest, 2 default,
// 3 better, 4 best) to the zstd level the archive package takes.
func zstdLevel(setting int) int {
	switch setting {
	case 1:
		return 1
	case 3:
		return 6
	case 4:
		return 10
	}
	return 3
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// printPlan shows what a run would do and changes nothing.
func printPlan(ctx context.Context, w io.Writer, eng engine.Engine, env *projectEnv) error {
	containers, err := eng.Containers(ctx, env.Project.Name)
	if err != nil {
		return err
	}
	plan, err := backup.MakePlan(env.Project, containers, env.keep(), env.skipVolumes())
	if err != nil {
		return err
	}
	last := lastSizes(env)
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
	if rc := env.remoteConfig(); rc.URL != "" {
		enc := "NOT encrypted (set remote.encrypt_to)"
		if rc.EncryptTo != "" {
			enc = "encrypted with age"
		}
		fmt.Fprintf(w, "  then uploaded to: %s, %s, after the services are back (the bucket is checked before anything stops)\n", rc.URL, enc)
	}
	fmt.Fprintf(w, "  stop order:  %s\n", orderString(plan.StopOrder))
	fmt.Fprintf(w, "  start order: %s\n", orderString(plan.StartOrder))
	for svc, why := range plan.Kept {
		fmt.Fprintf(w, "  kept running: %s (%s)\n", svc, why)
	}
	if len(plan.NotRunning) > 0 {
		fmt.Fprintf(w, "  left alone (not running): %s\n", strings.Join(plan.NotRunning, ", "))
	}
	return nil
}

func orderString(levels [][]string) string {
	if len(levels) == 0 {
		return "(none: no running service to stop)"
	}
	parts := make([]string, len(levels))
	for i, l := range levels {
		parts[i] = strings.Join(l, " + ")
	}
	return strings.Join(parts, " → ")
}

// lastSizes returns the uncompressed size of each volume at the newest
// backup of the project that has it; lastArchiveSizes the archive's.
func lastSizes(env *projectEnv) map[string]int64 {
	return lastVolumeSizes(env, func(v archive.Volume) int64 { return v.TarBytes })
}

func lastArchiveSizes(env *projectEnv) map[string]int64 {
	return lastVolumeSizes(env, func(v archive.Volume) int64 { return v.ArchiveBytes })
}

func lastVolumeSizes(env *projectEnv, size func(archive.Volume) int64) map[string]int64 {
	out := map[string]int64{}
	entries, _ := env.backups()
	for _, e := range entries {
		if e.Manifest == nil {
			continue
		}
		for _, v := range e.Manifest.Volumes {
			if _, ok := out[v.Name]; !ok {
				out[v.Name] = size(v)
			}
		}
	}
	return out
}

var _ progress.Reporter = (*printer)(nil)
