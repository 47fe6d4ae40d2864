package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// Exit codes of `check`, the Nagios plugin convention.
const (
	CheckOK       = 0
	CheckWarning  = 1
	CheckCritical = 2
	CheckUnknown  = 3
)

var checkNames = map[int]string{CheckOK: "OK", CheckWarning: "WARNING", CheckCritical: "CRITICAL", CheckUnknown: "UNKNOWN"}

type checkOptions struct {
	maxAge     time.Duration
	noSchedule bool
}

// pendingUploads reports how many successful backups of the project wait
// to be uploaded to the remote target (their upload failed), and since
// when the oldest waits. Without a remote there are none.
func pendingUploads(env *app.Project, f *state.File) (n int, oldest time.Time) {
	if env.RemoteConfig().URL == "" {
		return 0, time.Time{}
	}
	for _, b := range f.Backups {
		if b.Remote == state.UploadFailed && b.Pruned.IsZero() && b.Status == state.StatusSuccess {
			if n == 0 || b.Started.Before(oldest) {
				oldest = b.Started
			}
			n++
		}
	}
	return n, oldest
}

// scheduledBy reports what runs the project's schedule: a crontab line, a
// systemd timer, a launch agent or a live daemon ("" for nothing found).
// A variable so that tests can stand in for the host.
var scheduledBy = findScheduler

func newCheckCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check [--max-age 26h]",
		Short: "Check that backups happen: exit 0 OK, 1 WARNING, 2 CRITICAL (for monitoring and deploy scripts)",
		Long: `Print one line saying whether this project's backups are healthy, and exit
the way monitoring plugins do (Nagios, Icinga, Sensu, Zabbix, a deploy script):

  0 OK        the last backup succeeded and is recent
  1 WARNING   the last run failed but a recent backup exists; notifications,
              pings or uploads are pending; backups are enabled but nothing
              runs the schedule (no crontab line, timer, launch agent or daemon)
  2 CRITICAL  no successful backup within --max-age, none at all, or services
              were not running again after the last backup or restore
  3 UNKNOWN   the project or its autobackup.toml cannot be read

It reads autobackup.toml and the host's scheduler entries; it needs no
Docker engine.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), dockerCli.Out(), g, o, time.Now())
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.maxAge, "max-age", 26*time.Hour, "CRITICAL when the last successful backup is older than this")
	f.BoolVar(&o.noSchedule, "no-schedule-check", false, "Do not look for what runs the schedule (when something this host cannot see runs it)")
	return cmd
}

// checkResult is the verdict of `check`: the worst level found and every
// reason, worst first.
type checkResult struct {
	level   int
	reasons []string
	perf    []string
}

func (r *checkResult) add(level int, format string, a ...any) {
	if level > r.level {
		r.level = level
		r.reasons = append([]string{fmt.Sprintf(format, a...)}, r.reasons...)
		return
	}
	r.reasons = append(r.reasons, fmt.Sprintf(format, a...))
}

func (r checkResult) line(project string) string {
	s := "AUTOBACKUP " + checkNames[r.level] + " - " + project + ": " + strings.Join(r.reasons, "; ")
	if len(r.perf) > 0 {
		s += " | " + strings.Join(r.perf, " ")
	}
	return s
}

func runCheck(ctx context.Context, w io.Writer, g *globalOptions, o checkOptions, now time.Time) error {
	if o.maxAge <= 0 {
		return usageErrorf("--max-age %s: want a duration greater than 0, like 26h", o.maxAge)
	}
	env, err := loadProject(ctx, g)
	if err != nil {
		fmt.Fprintf(w, "AUTOBACKUP UNKNOWN - %s\n", text.OneLine(err.Error()))
		return exitCodeErr{code: CheckUnknown, err: err}
	}
	r := evaluate(env, o, now)
	fmt.Fprintln(w, r.line(env.Project.Name))
	if r.level == CheckOK {
		return nil
	}
	return exitCodeErr{code: r.level, err: errors.New("check " + strings.ToLower(checkNames[r.level]) + "; details: docker autobackup status")}
}

// evaluate judges the project's backups at now.
func evaluate(env *app.Project, o checkOptions, now time.Time) checkResult {
	var r checkResult
	f := env.State
	s := f.State
	if m := f.Monitor; len(m.ServicesDown) > 0 {
		r.add(CheckCritical, "services not running since %s: %s (bring them back: %s)", m.ServicesDownBy, strings.Join(m.ServicesDown, ", "), env.UpCommand())
	}
	age := now.Sub(s.LastSuccessTime)
	switch {
	case s.LastSuccessTime.IsZero() && s.LastBackupID == "":
		r.add(CheckCritical, "no backup has ever run (docker autobackup run)")
	case s.LastSuccessTime.IsZero():
		r.add(CheckCritical, "no successful backup yet")
	case age > o.maxAge:
		r.add(CheckCritical, "last successful backup %s is %s old (max %s)", s.LastSuccessID, roundAge(age), o.maxAge)
	default:
		r.add(CheckOK, "last successful backup %s is %s old", s.LastSuccessID, roundAge(age))
	}
	if !s.LastSuccessTime.IsZero() {
		r.perf = append(r.perf, "last_success_age="+strconv.FormatInt(int64(age.Seconds()), 10)+"s;;"+strconv.FormatInt(int64(o.maxAge.Seconds()), 10))
	}
	if s.LastBackupID != "" && s.LastBackupStatus != state.StatusSuccess {
		msg := "last run " + s.LastBackupID + " failed"
		if b, ok := f.FindBackup(s.LastBackupID); ok && b.Error != "" {
			msg += ": " + text.Truncate(b.Error, 200)
		}
		r.add(CheckWarning, "%s", msg)
	}
	if n, oldest := pendingUploads(env, f); n > 0 {
		r.add(CheckWarning, "%d backup(s) local only: not uploaded yet, the oldest since %s (docker autobackup push)", n, oldest.Local().Format(time.RFC3339))
	}
	if n := len(f.Monitor.Pending); n > 0 {
		p := f.Monitor.Pending[n-1]
		r.add(CheckWarning, "%d notification/ping/metrics delivery(ies) failed, latest %s to %s: %s", n, p.Kind, p.Target, text.Truncate(p.Error, 120))
	}
	if env.Settings.Enabled && !o.noSchedule {
		if by := scheduledBy(env); by == "" {
			r.add(CheckWarning, "backups are enabled but nothing runs the schedule: no crontab line, systemd timer, launch agent or daemon found (docker autobackup schedule install, or docker autobackup daemon)")
		}
	}
	return r
}

func roundAge(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Minute)
}

// findScheduler looks for what runs the project's schedule on this host:
// the marker of our crontab line, our systemd timer, our launch agent, or a
// running `docker autobackup daemon` serving the project.
func findScheduler(env *app.Project) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if content, err := (userCrontab{}).read(ctx); err == nil && strings.Contains(content, entryMarker(env.Dir)+"(") {
		return "crontab"
	}
	var o installOptions
	if dir, err := o.units(); err == nil {
		if units, err := ourUnits(dir, env.Dir); err == nil {
			for _, u := range units {
				if strings.HasSuffix(u, ".timer") {
					return "systemd timer " + filepath.Base(u)
				}
			}
		}
	}
	if dir, err := o.agents(); err == nil {
		if agents, err := ourAgents(dir, env.Dir); err == nil && len(agents) > 0 {
			return "launch agent " + filepath.Base(agents[0])
		}
	}
	if pid := daemonFor(env.Dir); pid > 0 {
		return "daemon (pid " + strconv.Itoa(pid) + ")"
	}
	return ""
}

// daemonFor returns the pid of a running `docker autobackup daemon` that
// serves dir, found through /proc (Linux); 0 when there is none or the
// host has no /proc.
func daemonFor(dir string) int {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil || len(data) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if !isDaemon(args) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		dirs := flagValues(args, "--project-directory")
		if len(dirs) == 0 {
			// It serves the project of its working directory.
			if cwd, err := os.Readlink(filepath.Join(filepath.Dir(p), "cwd")); err == nil && cwd == dir {
				return pid
			}
			continue
		}
		for _, d := range dirs {
			if d == dir {
				return pid
			}
			if !filepath.IsAbs(d) {
				if cwd, err := os.Readlink(filepath.Join(filepath.Dir(p), "cwd")); err == nil && filepath.Join(cwd, d) == dir {
					return pid
				}
			}
		}
	}
	return 0
}

// isDaemon reports whether argv runs our daemon: the docker CLI's plugin
// invocation is "docker-autobackup autobackup [flags] daemon [flags]".
func isDaemon(args []string) bool {
	if len(args) < 3 || !strings.HasSuffix(filepath.Base(args[0]), "docker-autobackup") {
		return false
	}
	seen := false
	for _, a := range args[1:] {
		if a == "autobackup" {
			seen = true
			continue
		}
		if seen && a == "daemon" {
			return true
		}
	}
	return false
}

// flagValues returns the values of a repeatable flag in args, in both the
// "--flag value" and "--flag=value" spellings.
func flagValues(args []string, flag string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == flag && i+1 < len(args) {
			out = append(out, args[i+1])
			i++
		} else if v, ok := strings.CutPrefix(args[i], flag+"="); ok {
			out = append(out, v)
		}
	}
	return out
}
