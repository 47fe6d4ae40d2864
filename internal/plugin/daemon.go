package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
	"github.com/docker-autobackup/docker-autobackup/internal/scheduler"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

type daemonOptions struct {
	dirs []string
	poll time.Duration
}

func newDaemonCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	var o daemonOptions
	cmd := &cobra.Command{
		Use:   "daemon [--project-directory DIR]...",
		Short: "Run backups on their schedules, in the foreground, for one or more projects",
		Long: `Run in the foreground and back up each project at its schedule's times while
it is enabled. Settings are re-read when autobackup.toml or the compose file
changes. A backup of a project never starts while the previous one still
runs; one that would is skipped and logged. With catch_up = true, a run
missed while the daemon was down is made once at start-up.

Serves the current project, or every --project-directory given. Logs go to
stderr. On SIGTERM or SIGINT it stops scheduling, aborts a running backup
(stopped services are started again) and exits when it has returned.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDaemon(cmd.Context(), dockerCli, g, o)
		},
	}
	f := cmd.Flags()
	// Repeatable here; it shadows the single-valued global flag.
	f.StringArrayVar(&o.dirs, "project-directory", nil, "A project directory to serve (repeatable; default: the current project)")
	f.DurationVar(&o.poll, "poll", 10*time.Second, "How often to check the projects' files for changed settings")
	return cmd
}

func runDaemon(ctx context.Context, dockerCli command.Cli, g *globalOptions, o daemonOptions) error {
	if o.poll < 100*time.Millisecond {
		return usageErrorf("--poll %s: want at least 100ms, like 10s", o.poll)
	}
	stderr := dockerCli.Err()
	log := daemonLogger(stderr)
	ctx, stop := withSignals(ctx, stderr)
	defer stop()

	var selections []compose.Options
	if len(o.dirs) == 0 {
		selections = []compose.Options{g.Options}
	}
	for _, d := range o.dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return err
		}
		selections = append(selections, compose.Options{ProjectDir: abs, EnvFiles: g.EnvFiles, Profiles: g.Profiles})
	}

	var projects []scheduler.Project
	sels := map[string]compose.Options{} // by project directory
	for _, sel := range selections {
		// Load each project once now, so that a mistake stops the daemon
		// at start rather than at 2 a.m.
		env, err := loadProject(ctx, &globalOptions{Options: sel})
		if err != nil {
			return fmt.Errorf("project %s: %w", cmp(sel.ProjectDir, "in the current directory"), err)
		}
		if _, dup := sels[env.Dir]; dup {
			continue
		}
		// Later runs find the project by its directory, whatever the
		// working directory.
		if sel.ProjectDir == "" {
			sel.ProjectDir = env.Dir
		}
		for i, f := range sel.Files {
			if sel.Files[i], err = filepath.Abs(f); err != nil {
				return err
			}
		}
		sels[env.Dir] = sel
		projects = append(projects, daemonProject(env, sel))
	}

	s := &scheduler.Scheduler{
		Projects: projects,
		Poll:     o.poll,
		Notify:   func(e scheduler.Event) { logEvent(log, e) },
	}
	s.Run = func(ctx context.Context, dir, reason string) error {
		return daemonBackup(ctx, dockerCli, dir, sels[dir], log)
	}
	log.Info("daemon started", "projects", len(projects), "pid", os.Getpid())
	err := s.Serve(ctx)
	log.Info("daemon stopped")
	return err
}

func cmp(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// daemonLogger logs at Info level at least: a daemon's runs are its output.
func daemonLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if slog.Default().Enabled(context.Background(), slog.LevelDebug) {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// daemonProject is the scheduler's view of one project: its settings, and
// a stamp of the files they come from.
func daemonProject(env *app.Project, sel compose.Options) scheduler.Project {
	files := append([]string{env.StatePath}, env.Project.ComposeFiles...)
	return scheduler.Project{
		Name: env.Dir,
		Stamp: func() (string, error) {
			var b strings.Builder
			for _, f := range files {
				fi, err := os.Stat(f)
				switch {
				case errors.Is(err, os.ErrNotExist):
					b.WriteString("-;")
				case err != nil:
					return "", err
				default:
					fmt.Fprintf(&b, "%d:%d;", fi.Size(), fi.ModTime().UnixNano())
				}
			}
			return b.String(), nil
		},
		Load: func(ctx context.Context) (scheduler.Config, error) {
			env, err := loadProject(ctx, &globalOptions{Options: sel})
			if err != nil {
				return scheduler.Config{}, err
			}
			r := env.Settings
			return scheduler.Config{Enabled: r.Enabled, Schedule: r.Schedule, CatchUp: r.CatchUp, LastRun: env.State.State.LastBackupTime}, nil
		},
	}
}

func logEvent(log *slog.Logger, e scheduler.Event) {
	switch e.Kind {
	case scheduler.Loaded:
		if e.Next.IsZero() {
			log.Info("settings loaded: backups disabled (docker autobackup enable)", "project", e.Project)
			return
		}
		log.Info("settings loaded", "project", e.Project, "schedule", e.Config.Schedule, "catch_up", e.Config.CatchUp, "next", e.Next.Format(time.RFC3339))
	case scheduler.LoadFailed:
		log.Error("cannot read settings; keeping the previous ones", "project", e.Project, "err", e.Err)
	case scheduler.Started:
		log.Info("backup starting", "project", e.Project, "reason", e.Reason, "due", e.Due.Format(time.RFC3339))
	case scheduler.Finished:
		args := []any{"project", e.Project, "took", e.Duration.Round(time.Millisecond)}
		if !e.Next.IsZero() {
			args = append(args, "next", e.Next.Format(time.RFC3339))
		}
		log.Debug("run returned", args...)
	case scheduler.Skipped:
		log.Warn("backup skipped", "project", e.Project, "due", e.Due.Format(time.RFC3339), "reason", e.Reason, "next", e.Next.Format(time.RFC3339))
	case scheduler.Stopping:
		log.Info("stopping: no new backups; waiting for running ones to abort", "running", e.Running, "cause", e.Err)
	}
}

// daemonBackup makes one backup of the project in dir, selected by sel,
// through the same use case as run (app.Service.Backup), and logs its
// outcome. A busy project lock means another backup is running: skipped.
func daemonBackup(ctx context.Context, dockerCli command.Cli, dir string, sel compose.Options, log *slog.Logger) error {
	env, err := app.Load(ctx, sel)
	if err != nil {
		log.Error("backup not started: cannot load the project", "project", dir, "err", err)
		return err
	}
	out := newRunOutput()
	s := &app.Service{Reporter: out.tee(logReporter(log, dir))}
	eng, err := newEngine(ctx, dockerCli)
	if err != nil {
		log.Error("backup not started", "project", dir, "err", err)
		s.BackupNotStarted(ctx, env, err)
		return err
	}
	s.Engine = eng
	res, runErr := s.Backup(ctx, env, app.BackupRequest{LockTimeout: 0, Holder: "daemon", Log: out.String})
	if res == nil {
		log.Warn("backup not started: the project is busy", "project", dir, "err", runErr)
		return runErr
	}
	r := res.Result
	if runErr != nil {
		if restart, down := app.RestartFailed(runErr); down {
			log.Error("BACKUP FAILED AND SERVICES ARE NOT BACK UP: check them now (docker compose ps; docker compose up -d --wait)",
				"project", dir, "id", r.ID, "services", strings.Join(restart.Services(), ","), "err", text.OneLine(runErr.Error()))
		} else {
			log.Error("backup failed", "project", dir, "id", r.ID, "interrupted", res.Interrupted, "err", text.OneLine(runErr.Error()))
		}
		return runErr
	}
	log.Info("backup complete", "project", dir, "id", r.ID, "volumes", len(r.Volumes), "size", humanBytes(r.SizeBytes),
		"downtime", r.Downtime.Round(time.Millisecond), "took", r.Finished.Sub(r.Started).Round(time.Millisecond))
	if res.UploadErr != nil {
		log.Error("BACKUP IS LOCAL ONLY: upload failed; the next run retries (or: docker autobackup push)", "project", dir, "id", r.ID, "err", text.OneLine(res.UploadErr.Error()))
	}
	return res.UploadErr
}

// logReporter logs what a use case reports: warnings as warnings, the
// rest (what was copied, uploaded, deleted) at debug level.
func logReporter(log *slog.Logger, dir string) progress.Reporter {
	return progress.Func(func(e progress.Event) {
		switch e.Kind {
		case progress.Warning:
			log.Warn(text.OneLine(e.Message), "project", dir)
		case progress.Info:
			log.Debug(text.OneLine(e.Message), "project", dir)
		}
	})
}
