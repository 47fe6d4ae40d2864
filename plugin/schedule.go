package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/internal/atomicfile"
	"github.com/docker-autobackup/docker-autobackup/state"
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
func newHostJob(env *projectEnv, g *globalOptions, o installOptions) (hostJob, error) {
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
	j := hostJob{logFile: filepath.Join(env.BackupDir, "autobackup.log")}
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
func shellQuote(s string) string {
	if s != "" && regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cronLine renders the crontab entry: the marker comment and the job line.
// In a crontab an unescaped % ends the command.
func cronLine(expr, dir string, j hostJob) string {
	var parts []string
	for _, e := range j.env {
		k, v, _ := strings.Cut(e, "=")
		parts = append(parts, k+"="+shellQuote(v))
	}
	for _, a := range j.args {
		parts = append(parts, shellQuote(a))
	}
	cmd := strings.Join(parts, " ") + " >>" + shellQuote(j.logFile) + " 2>&1"
	cmd = strings.ReplaceAll(cmd, "%", `\%`)
	return entryMarker(dir) + markerTail + "\n" + expr + " " + cmd + "\n"
}

// cronExpr returns expr as a crontab accepts it, or why it cannot be.
func cronExpr(expr string) (string, error) {
	e := strings.Join(strings.Fields(expr), " ")
	switch {
	case strings.HasPrefix(e, "@every"):
		return "", usageErrorf("schedule %q: crontab has no @every; use a cron expression (docker autobackup config set schedule \"0 */6 * * *\"), or docker autobackup daemon", expr)
	case strings.HasPrefix(e, "TZ=") || strings.HasPrefix(e, "CRON_TZ="):
		return "", usageErrorf("schedule %q: a time zone per entry is not portable across crontabs; use --systemd, or docker autobackup daemon, or a schedule in the host's time zone", expr)
	}
	return e, nil
}

// removeCronEntry returns content without the entry for dir (the marker
// line and the line after it) and whether there was one.
func removeCronEntry(content, dir string) (string, bool) {
	lines := strings.SplitAfter(content, "\n")
	var out []string
	found := false
	for i := 0; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], entryMarker(dir)+"(") {
			found = true
			if i+1 < len(lines) && !strings.HasPrefix(lines[i+1], "#") {
				i++
			}
			continue
		}
		out = append(out, lines[i])
	}
	return strings.Join(out, ""), found
}

// crontab is where cron entries live.
type crontab interface {
	read(ctx context.Context) (string, error)
	write(ctx context.Context, content string) error
	String() string
}

type crontabFile string

func (f crontabFile) read(context.Context) (string, error) {
	data, err := os.ReadFile(string(f))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return string(data), err
}

func (f crontabFile) write(_ context.Context, content string) error {
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(string(f)); err == nil {
		mode = fi.Mode().Perm()
	}
	return atomicfile.WriteFile(string(f), []byte(content), mode)
}

func (f crontabFile) String() string { return string(f) }

// userCrontab is the invoking user's crontab, through the crontab command.
type userCrontab struct{}

func (userCrontab) read(ctx context.Context) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "crontab", "-l")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && strings.Contains(strings.ToLower(stderr.String()), "no crontab") {
			return "", nil
		}
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("crontab -l: %w; install cron, or use --systemd or docker autobackup daemon", err)
		}
		return "", fmt.Errorf("crontab -l: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (userCrontab) write(ctx context.Context, content string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "crontab", "-")
	cmd.Stdin = strings.NewReader(content)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("crontab -: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (userCrontab) String() string { return "your crontab" }

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
	r := env.Settings
	if !r.Enabled {
		return usageErrorf("backups are disabled for project %s, so an entry would back up anyway; enable them first: docker autobackup enable", env.Project.Name)
	}
	j, err := newHostJob(env, g, o)
	if err != nil {
		return err
	}
	if o.systemd {
		return installSystemd(w, env, j, o)
	}
	if o.launchd {
		return installLaunchd(w, env, j, o)
	}
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
	fmt.Fprintf(w, "Output goes to %s. Next run: %s.\n", j.logFile, nextRunString(r.Schedule))
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

// unitName is the base name of the units for a project directory: readable,
// and unique per directory.
func unitName(projectName, dir string) string {
	sum := sha256.Sum256([]byte(dir))
	safe := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(projectName, "-")
	return "docker-autobackup-" + safe + "-" + hex.EncodeToString(sum[:4])
}

// systemdQuote quotes an ExecStart argument: double quotes, with systemd's
// specifier (%) and variable ($) characters escaped.
func systemdQuote(s string) string {
	s = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "$", "$$").Replace(s)
	return `"` + s + `"`
}

func installSystemd(w io.Writer, env *projectEnv, j hostJob, o installOptions) error {
	cal, err := onCalendar(env.Settings.Schedule)
	if err != nil {
		return err
	}
	dir, err := o.units()
	if err != nil {
		return err
	}
	name := unitName(env.Project.Name, env.Dir)
	marker := entryMarker(env.Dir) + markerTail + "\n"
	var svc strings.Builder
	svc.WriteString(marker)
	fmt.Fprintf(&svc, "[Unit]\nDescription=docker autobackup of Compose project %s (%s)\n\n", env.Project.Name, strings.ReplaceAll(env.Dir, "%", "%%"))
	svc.WriteString("[Service]\nType=oneshot\n")
	for _, e := range j.env {
		fmt.Fprintf(&svc, "Environment=%s\n", systemdQuote(e))
	}
	quoted := make([]string, len(j.args))
	for i, a := range j.args {
		quoted[i] = systemdQuote(a)
	}
	fmt.Fprintf(&svc, "ExecStart=%s\n", strings.Join(quoted, " "))
	logPath := strings.ReplaceAll(j.logFile, "%", "%%")
	fmt.Fprintf(&svc, "StandardOutput=append:%s\nStandardError=append:%s\n", logPath, logPath)

	var tmr strings.Builder
	tmr.WriteString(marker)
	fmt.Fprintf(&tmr, "[Unit]\nDescription=Schedule of docker autobackup for %s (%s)\n\n", env.Project.Name, strings.ReplaceAll(env.Dir, "%", "%%"))
	fmt.Fprintf(&tmr, "[Timer]\n# schedule %q\nOnCalendar=%s\n", env.Settings.Schedule, cal)
	// Persistent runs a time missed while the machine was off: catch_up.
	fmt.Fprintf(&tmr, "Persistent=%t\nUnit=%s.service\n\n[Install]\nWantedBy=timers.target\n", env.Settings.CatchUp, name)

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(j.logFile), 0o700); err != nil {
		return fmt.Errorf("create the log directory: %w", err)
	}
	// An earlier install under another project name is replaced.
	stale, err := ourUnits(dir, env.Dir)
	if err != nil {
		return err
	}
	files := []struct{ name, content string }{{name + ".service", svc.String()}, {name + ".timer", tmr.String()}}
	for _, f := range files {
		if err := atomicfile.WriteFile(filepath.Join(dir, f.name), []byte(f.content), 0o644); err != nil {
			return fmt.Errorf("write unit: %w", err)
		}
	}
	for _, p := range stale {
		if b := filepath.Base(p); b != files[0].name && b != files[1].name {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove the earlier unit: %w", err)
			}
			fmt.Fprintf(w, "Removed the earlier unit %s\n", p)
		}
	}
	for _, f := range files {
		fmt.Fprintf(w, "Wrote %s:\n%s\n", filepath.Join(dir, f.name), f.content)
	}
	fmt.Fprintf(w, "Output goes to %s. Activate the timer:\n  systemctl --user daemon-reload && systemctl --user enable --now %s.timer\n", j.logFile, name)
	login := os.Getenv("USER")
	if u, err := user.Current(); login == "" && err == nil {
		login = u.Username
	}
	who := shellQuote(login)
	if login == "" {
		who = "$(id -un)"
	}
	fmt.Fprintf(w, "(To run it while you are logged out: loginctl enable-linger %s)\n", who)
	return nil
}

func removeSystemd(w io.Writer, projectDir string, o installOptions) error {
	dir, err := o.units()
	if err != nil {
		return err
	}
	units, err := ourUnits(dir, projectDir)
	if err != nil {
		return err
	}
	if len(units) == 0 {
		fmt.Fprintf(w, "No systemd units for %s in %s: nothing to remove.\n", projectDir, dir)
		return nil
	}
	for _, p := range units {
		if strings.HasSuffix(p, ".timer") {
			fmt.Fprintf(w, "Stop the timer first if it is active: systemctl --user disable --now %s\n", filepath.Base(p))
		}
	}
	for _, p := range units {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("remove unit: %w", err)
		}
		fmt.Fprintf(w, "Removed %s\n", p)
	}
	fmt.Fprintln(w, "Then: systemctl --user daemon-reload")
	return nil
}

// ourUnits returns the units in dir that carry the marker of projectDir.
func ourUnits(dir, projectDir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "docker-autobackup-*"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range paths {
		if !strings.HasSuffix(p, ".service") && !strings.HasSuffix(p, ".timer") {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read unit: %w", err)
		}
		if strings.HasPrefix(string(data), entryMarker(projectDir)+"(") {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// onCalendar converts a schedule to a systemd OnCalendar expression, or
// says why it cannot.
func onCalendar(expr string) (string, error) {
	refuse := func(why string) error {
		return usageErrorf("schedule %q cannot be written as a systemd timer: %s; use --cron, or docker autobackup daemon", expr, why)
	}
	fields := strings.Fields(expr)
	zone := ""
	if len(fields) > 0 && (strings.HasPrefix(fields[0], "TZ=") || strings.HasPrefix(fields[0], "CRON_TZ=")) {
		_, zone, _ = strings.Cut(fields[0], "=")
		zone = " " + zone
		fields = fields[1:]
	}
	if len(fields) == 1 && strings.HasPrefix(fields[0], "@") {
		switch fields[0] {
		case "@hourly":
			return "*-*-* *:00:00" + zone, nil
		case "@daily", "@midnight":
			return "*-*-* 00:00:00" + zone, nil
		case "@weekly": // cron's week starts on Sunday; systemd's "weekly" is Monday
			return "Sun *-*-* 00:00:00" + zone, nil
		case "@monthly":
			return "*-*-01 00:00:00" + zone, nil
		case "@yearly", "@annually":
			return "*-01-01 00:00:00" + zone, nil
		}
		return "", refuse("unknown descriptor")
	}
	if len(fields) >= 1 && fields[0] == "@every" {
		return "", refuse("@every intervals have no calendar form")
	}
	if len(fields) != 5 {
		return "", refuse("want 5 cron fields")
	}
	minute, err := cronField(fields[0], 0, 59, nil)
	if err != nil {
		return "", refuse(err.Error())
	}
	hour, err := cronField(fields[1], 0, 23, nil)
	if err != nil {
		return "", refuse(err.Error())
	}
	dom, err := cronField(fields[2], 1, 31, nil)
	if err != nil {
		return "", refuse(err.Error())
	}
	month, err := cronField(fields[3], 1, 12, monthNames)
	if err != nil {
		return "", refuse(err.Error())
	}
	dow, err := cronField(fields[4], 0, 7, dayNames)
	if err != nil {
		return "", refuse(err.Error())
	}
	if dow != nil {
		// 7 is Sunday too.
		if dow[7] {
			dow[0] = true
		}
		delete(dow, 7)
		if len(dow) == 7 {
			dow = nil
		}
	}
	if dom != nil && dow != nil {
		return "", refuse("cron runs when EITHER the day of month or the weekday matches, a systemd timer only when both do")
	}
	var b strings.Builder
	if dow != nil {
		names := []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
		var days []string
		for d := 0; d < 7; {
			if !dow[d] {
				d++
				continue
			}
			e := d
			for e+1 < 7 && dow[e+1] {
				e++
			}
			switch {
			case e-d >= 2:
				days = append(days, names[d]+".."+names[e])
			case e > d:
				days = append(days, names[d], names[e])
			default:
				days = append(days, names[d])
			}
			d = e + 1
		}
		b.WriteString(strings.Join(days, ",") + " ")
	}
	fmt.Fprintf(&b, "*-%s-%s %s:%s:00%s", calList(month), calList(dom), calList(hour), calList(minute), zone)
	return b.String(), nil
}

var monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
var dayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

// cronField parses one cron field into its set of values; nil means every
// value ("*").
func cronField(f string, lo, hi int, names map[string]int) (map[int]bool, error) {
	if f == "*" || f == "?" {
		return nil, nil
	}
	num := func(s string) (int, error) {
		if n, ok := names[strings.ToLower(s)]; ok {
			return n, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%q is not a value from %d to %d", s, lo, hi)
		}
		return n, nil
	}
	set := map[int]bool{}
	full := true
	for _, part := range strings.Split(f, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			var err error
			if step, err = strconv.Atoi(stepStr); err != nil || step < 1 {
				return nil, fmt.Errorf("step %q is not a positive number", stepStr)
			}
		}
		a, b := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			x, y, _ := strings.Cut(rng, "-")
			var err error
			if a, err = num(x); err != nil {
				return nil, err
			}
			if b, err = num(y); err != nil {
				return nil, err
			}
		default:
			n, err := num(rng)
			if err != nil {
				return nil, err
			}
			a, b = n, n
			if hasStep {
				b = hi
			}
		}
		if a > b {
			return nil, fmt.Errorf("range %q runs backwards", rng)
		}
		if rng != "*" || step != 1 {
			full = false
		}
		for v := a; v <= b; v += step {
			set[v] = true
		}
	}
	if full {
		return nil, nil
	}
	return set, nil
}

// calList renders a value set for OnCalendar: "*", "05", "00,15,30,45",
// runs of three or more as "09..17".
func calList(set map[int]bool) string {
	if set == nil {
		return "*"
	}
	vals := make([]int, 0, len(set))
	for v := range set {
		vals = append(vals, v)
	}
	sort.Ints(vals)
	var parts []string
	for i := 0; i < len(vals); {
		j := i
		for j+1 < len(vals) && vals[j+1] == vals[j]+1 {
			j++
		}
		if j-i >= 2 {
			parts = append(parts, fmt.Sprintf("%02d..%02d", vals[i], vals[j]))
		} else {
			for k := i; k <= j; k++ {
				parts = append(parts, fmt.Sprintf("%02d", vals[k]))
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
