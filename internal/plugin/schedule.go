package plugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

func newScheduleCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Show the schedule and the next run times; install or remove a host scheduler entry",
		Long: `Show the project's schedule and its next 5 run times, in local time and UTC.

Something has to run the schedule: either "docker autobackup daemon", or an
entry in the host's scheduler written by "docker autobackup schedule install"
(a crontab line, or a systemd user timer).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScheduleShow(cmd.Context(), dockerCli.Out(), g, time.Now())
		},
	}
	var o installOptions
	install := &cobra.Command{
		Use:   "install [--cron|--systemd|--launchd]",
		Short: "Write a crontab line, systemd timer or launchd agent that runs this project's backups on its schedule",
		Long: `Write a host scheduler entry that runs "docker autobackup run --if-enabled --quiet" for
this project on its schedule, with output appended to a log file. Running it
again replaces the entry (one entry per project directory). Run it again after
changing the schedule. Prints exactly what it wrote.

--cron (the default) edits your crontab through "crontab -l" / "crontab -",
or the file given with --crontab-file. --systemd writes a .service and a
.timer into --unit-dir (default ~/.config/systemd/user); enable the timer with
the systemctl commands it prints. --launchd (macOS) writes a LaunchAgent
property list into --unit-dir (default ~/Library/LaunchAgents), its
StartCalendarInterval taken from the schedule; load it with the launchctl
command it prints.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.env = os.Getenv
			return runScheduleInstall(cmd.Context(), dockerCli.Out(), g, o)
		},
	}
	addInstallFlags(install, &o)
	remove := &cobra.Command{
		Use:   "remove [--cron|--systemd|--launchd]",
		Short: "Remove the host scheduler entry of this project",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScheduleRemove(cmd.Context(), dockerCli.Out(), g, o)
		},
	}
	addInstallFlags(remove, &o)
	cmd.AddCommand(install, remove)
	return cmd
}

func addInstallFlags(cmd *cobra.Command, o *installOptions) {
	f := cmd.Flags()
	f.BoolVar(&o.cron, "cron", false, "Use the crontab (the default)")
	f.BoolVar(&o.systemd, "systemd", false, "Use a systemd user timer")
	f.BoolVar(&o.launchd, "launchd", false, "Use a macOS launchd agent")
	f.StringVar(&o.crontabFile, "crontab-file", "", "Edit this file instead of your crontab (crontab -l / crontab -)")
	f.StringVar(&o.unitDir, "unit-dir", "", "Where to put the systemd units (default ~/.config/systemd/user) or the launchd agent (default ~/Library/LaunchAgents)")
}

type installOptions struct {
	cron, systemd bool
	launchd       bool
	crontabFile   string
	unitDir       string
	env           func(string) string // os.Getenv; tests pass their own
	docker        string              // the docker CLI; found on PATH when ""
}

// nextRunString describes the next run of expr for people.
func nextRunString(expr string) string {
	runs, err := state.NextRuns(expr, time.Now(), 1)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	if len(runs) == 0 {
		return "never"
	}
	return runs[0].Format("Mon 2006-01-02 15:04 MST") + " (in " + time.Until(runs[0]).Round(time.Minute).String() + ")"
}

func runScheduleShow(ctx context.Context, w io.Writer, g *globalOptions, now time.Time) error {
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	r := env.Settings
	src := ""
	for _, s := range env.State.Settings.Describe(env.Compose) {
		if s.Key == "schedule" {
			src = s.Source
		}
	}
	onOff := "enabled"
	if !r.Enabled {
		onOff = "DISABLED (turn on: docker autobackup enable)"
	}
	fmt.Fprintf(w, "Project:  %s (%s)\n", env.Project.Name, env.Dir)
	fmt.Fprintf(w, "Schedule: %s (from %s), %s\n", r.Schedule, src, onOff)
	runs, err := state.NextRuns(r.Schedule, now, 5)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "Next runs:")
	for _, t := range runs {
		fmt.Fprintf(w, "  %s   %s\n", t.Local().Format("Mon 2006-01-02 15:04 MST"), t.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if !r.Enabled {
		fmt.Fprintln(w, "(these are when backups would run once enabled)")
	}
	return nil
}

// entryMarker starts the comment that marks our entry for dir.
func entryMarker(dir string) string { return "# docker-autobackup: " + dir + " " }

const markerTail = `(written by "docker autobackup schedule install"; remove with "docker autobackup schedule remove")`

// hostJob is what the host scheduler runs.
type hostJob struct {
	args    []string // argv
	env     []string // KEY=VALUE the command needs
	logFile string
}

// newHostJob builds the command a host scheduler runs for env's project:
// the docker CLI by absolute path (cron's PATH is minimal), the same
// DOCKER_CONFIG (where the plugin and the current context live), host and
// context, and the project selection as absolute paths.
func newHostJob(env *app.Project, g *globalOptions, o installOptions) (hostJob, error) {
	getenv := o.env
	if getenv == nil {
		getenv = os.Getenv
	}
	docker := o.docker
	if docker == "" {
		p, err := exec.LookPath("docker")
		if err != nil {
			return hostJob{}, fmt.Errorf("find the docker CLI: %w; is docker on your PATH?", err)
		}
		docker = p
	}
	docker, err := filepath.Abs(docker)
	if err != nil {
		return hostJob{}, err
	}
	j := hostJob{logFile: filepath.Join(env.BackupDir, "autobackup.log"), env: []string{logTimestampsEnv + "=1"}}
	j.args = []string{docker}
	if c := getenv("DOCKER_CONFIG"); c != "" {
		abs, err := filepath.Abs(c)
		if err != nil {
			return hostJob{}, err
		}
		j.args = append(j.args, "--config", abs)
	}
	for _, k := range []string{"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"} {
		if v := getenv(k); v != "" {
			j.env = append(j.env, k+"="+v)
		}
	}
	j.args = append(j.args, "autobackup", "--project-directory", env.Dir)
	for _, f := range g.Files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return hostJob{}, err
		}
		j.args = append(j.args, "--file", abs)
	}
	if g.Name != "" {
		j.args = append(j.args, "--project-name", g.Name)
	}
	for _, f := range g.EnvFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			return hostJob{}, err
		}
		j.args = append(j.args, "--env-file", abs)
	}
	for _, p := range g.Profiles {
		j.args = append(j.args, "--profile", p)
	}
	j.args = append(j.args, "run", "--if-enabled", "--quiet")
	for _, s := range append(append([]string{j.logFile}, j.args...), j.env...) {
		if strings.ContainsAny(s, "\n\r\x00") {
			return hostJob{}, usageErrorf("%q contains a line break; a scheduler entry cannot hold it", s)
		}
	}
	return j, nil
}

// shellQuote quotes s for a POSIX shell.

func (o installOptions) crontab() crontab {
	if o.crontabFile != "" {
		return crontabFile(o.crontabFile)
	}
	return userCrontab{}
}

func (o installOptions) check() error {
	n := 0
	for _, b := range []bool{o.cron, o.systemd, o.launchd} {
		if b {
			n++
		}
	}
	if n > 1 {
		return usageErrorf("--cron, --systemd and --launchd exclude each other: pick one")
	}
	if (o.systemd || o.launchd) && o.crontabFile != "" {
		return usageErrorf("--crontab-file goes with --cron, not --systemd or --launchd")
	}
	if !o.systemd && !o.launchd && o.unitDir != "" {
		return usageErrorf("--unit-dir goes with --systemd or --launchd")
	}
	return nil
}

func (o installOptions) units() (string, error) {
	if o.unitDir != "" {
		return filepath.Abs(o.unitDir)
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the systemd user unit directory: %w; pass --unit-dir", err)
	}
	return filepath.Join(cfg, "systemd", "user"), nil
}

func runScheduleInstall(ctx context.Context, w io.Writer, g *globalOptions, o installOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	j, err := newHostJob(env, g, o)
	if err != nil {
		return err
	}
	switch {
	case o.systemd:
		err = installSystemd(w, env, j, o)
	case o.launchd:
		err = installLaunchd(w, env, j, o)
	default:
		err = installCron(ctx, w, env, j, o)
	}
	if err == nil && !env.Settings.Enabled {
		// The entry runs `run --if-enabled`: installing it first is fine,
		// but it must not look like backups will happen.
		fmt.Fprintf(w, "Backups are disabled for project %s: this entry does nothing until you run: docker autobackup enable\n", env.Project.Name)
	}
	return err
}

func installCron(ctx context.Context, w io.Writer, env *app.Project, j hostJob, o installOptions) error {
	r := env.Settings
	expr, err := cronExpr(r.Schedule)
	if err != nil {
		return err
	}
	ct := o.crontab()
	old, err := ct.read(ctx)
	if err != nil {
		return err
	}
	entry := cronLine(expr, env.Dir, j)
	rest, replaced := removeCronEntry(old, env.Dir)
	if rest != "" && !strings.HasSuffix(rest, "\n") {
		rest += "\n"
	}
	content := rest + entry
	if content == old {
		fmt.Fprintf(w, "Already installed in %s, unchanged:\n%s", ct, entry)
		return nil
	}
	// The log's directory must exist for the shell redirection.
	if err := os.MkdirAll(filepath.Dir(j.logFile), 0o700); err != nil {
		return fmt.Errorf("create the log directory: %w", err)
	}
	if err := ct.write(ctx, content); err != nil {
		return err
	}
	verb := "Added to"
	if replaced {
		verb = "Replaced the entry in"
	}
	fmt.Fprintf(w, "%s %s:\n%s", verb, ct, entry)
	fmt.Fprintf(w, "Output goes to %s.", j.logFile)
	if r.Enabled {
		fmt.Fprintf(w, " Next run: %s.", nextRunString(r.Schedule))
	}
	fmt.Fprintln(w)
	return nil
}

func runScheduleRemove(ctx context.Context, w io.Writer, g *globalOptions, o installOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	if o.systemd {
		return removeSystemd(w, env.Dir, o)
	}
	if o.launchd {
		return removeLaunchd(w, env.Dir, o)
	}
	ct := o.crontab()
	old, err := ct.read(ctx)
	if err != nil {
		return err
	}
	rest, found := removeCronEntry(old, env.Dir)
	if !found {
		fmt.Fprintf(w, "No entry for %s in %s: nothing to remove.\n", env.Dir, ct)
		return nil
	}
	if err := ct.write(ctx, rest); err != nil {
		return err
	}
	fmt.Fprintf(w, "Removed from %s:\n", ct)
	for _, l := range diffLines(old, rest) {
		fmt.Fprintln(w, l)
	}
	return nil
}

// diffLines returns the lines of a that b lacks (b is a with lines removed).
func diffLines(a, b string) []string {
	have := map[string]int{}
	for _, l := range strings.Split(b, "\n") {
		have[l]++
	}
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if have[l] > 0 {
			have[l]--
			continue
		}
		out = append(out, l)
	}
	return out
}

// --- systemd ------------------------------------------------------------------
