package plugin

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"howett.net/plist"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/atomicfile"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// launchdLabelPrefix starts the Label (and file name) of our LaunchAgents.
const launchdLabelPrefix = "com.docker-autobackup."

// launchAgent is the part of a LaunchAgent property list we write and read.
type launchAgent struct {
	Label                 string            `plist:"Label"`
	Comment               string            `plist:"Comment,omitempty"`
	ProgramArguments      []string          `plist:"ProgramArguments"`
	EnvironmentVariables  map[string]string `plist:"EnvironmentVariables,omitempty"`
	StartCalendarInterval []calendarEntry   `plist:"StartCalendarInterval"`
	StandardOutPath       string            `plist:"StandardOutPath"`
	StandardErrorPath     string            `plist:"StandardErrorPath"`
	RunAtLoad             bool              `plist:"RunAtLoad"`
	ProjectDirectory      string            `plist:"-"`
}

// calendarEntry is one StartCalendarInterval dictionary: a key that is
// absent matches every value, as "*" does in cron.
type calendarEntry struct {
	Minute  *int `plist:"Minute,omitempty"`
	Hour    *int `plist:"Hour,omitempty"`
	Day     *int `plist:"Day,omitempty"`
	Month   *int `plist:"Month,omitempty"`
	Weekday *int `plist:"Weekday,omitempty"` // 0 is Sunday
}

// maxCalendarEntries bounds the StartCalendarInterval list; a schedule that
// needs more (every minute of every hour) is better run by the daemon.
const maxCalendarEntries = 500

// startCalendarInterval converts a schedule to launchd calendar entries,
// or says why it cannot.
func startCalendarInterval(expr string) ([]calendarEntry, error) {
	refuse := func(why string) error {
		return usageErrorf("schedule %q cannot be written as a launchd StartCalendarInterval: %s; use docker autobackup daemon", expr, why)
	}
	zero := 0
	one := 1
	fields := strings.Fields(expr)
	if len(fields) > 0 && (strings.HasPrefix(fields[0], "TZ=") || strings.HasPrefix(fields[0], "CRON_TZ=")) {
		return nil, refuse("launchd runs agents in the machine's time zone only")
	}
	if len(fields) == 1 && strings.HasPrefix(fields[0], "@") {
		switch fields[0] {
		case "@hourly":
			return []calendarEntry{{Minute: &zero}}, nil
		case "@daily", "@midnight":
			return []calendarEntry{{Minute: &zero, Hour: &zero}}, nil
		case "@weekly":
			return []calendarEntry{{Minute: &zero, Hour: &zero, Weekday: &zero}}, nil
		case "@monthly":
			return []calendarEntry{{Minute: &zero, Hour: &zero, Day: &one}}, nil
		case "@yearly", "@annually":
			return []calendarEntry{{Minute: &zero, Hour: &zero, Day: &one, Month: &one}}, nil
		}
		return nil, refuse("unknown descriptor")
	}
	if len(fields) >= 1 && fields[0] == "@every" {
		return nil, refuse("@every intervals have no calendar form")
	}
	if len(fields) != 5 {
		return nil, refuse("want 5 cron fields")
	}
	limits := []struct {
		lo, hi int
		names  map[string]int
	}{{0, 59, nil}, {0, 23, nil}, {1, 31, nil}, {1, 12, monthNames}, {0, 7, dayNames}}
	sets := make([][]int, 5) // nil: every value
	for i, f := range fields {
		set, err := cronField(f, limits[i].lo, limits[i].hi, limits[i].names)
		if err != nil {
			return nil, refuse(err.Error())
		}
		if i == 4 && set != nil {
			if set[7] {
				set[0] = true
			}
			delete(set, 7)
			if len(set) == 7 {
				set = nil
			}
		}
		if set != nil {
			vals := make([]int, 0, len(set))
			for v := range set {
				vals = append(vals, v)
			}
			sort.Ints(vals)
			sets[i] = vals
		}
	}
	if sets[2] != nil && sets[4] != nil {
		return nil, refuse("cron runs when EITHER the day of month or the weekday matches, launchd only when both do")
	}
	n := 1
	for _, s := range sets {
		if s != nil {
			n *= len(s)
		}
	}
	if n > maxCalendarEntries {
		return nil, refuse(fmt.Sprintf("it needs %d calendar entries (at most %d)", n, maxCalendarEntries))
	}
	entries := []calendarEntry{{}}
	set := []func(e *calendarEntry, v int){
		func(e *calendarEntry, v int) { e.Minute = &v },
		func(e *calendarEntry, v int) { e.Hour = &v },
		func(e *calendarEntry, v int) { e.Day = &v },
		func(e *calendarEntry, v int) { e.Month = &v },
		func(e *calendarEntry, v int) { e.Weekday = &v },
	}
	// Outer fields vary slowest: entries come out in time order.
	for i := 4; i >= 0; i-- {
		if sets[i] == nil {
			continue
		}
		var next []calendarEntry
		for _, e := range entries {
			for _, v := range sets[i] {
				c := e
				set[i](&c, v)
				next = append(next, c)
			}
		}
		entries = next
	}
	return entries, nil
}

func (o installOptions) agents() (string, error) {
	if o.unitDir != "" {
		return filepath.Abs(o.unitDir)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find ~/Library/LaunchAgents: %w; pass --unit-dir", err)
	}
	return filepath.Join(home, "Library", "LaunchAgents"), nil
}

func installLaunchd(w io.Writer, env *app.Project, j hostJob, o installOptions) error {
	cal, err := startCalendarInterval(env.Settings.Schedule)
	if err != nil {
		return err
	}
	dir, err := o.agents()
	if err != nil {
		return err
	}
	label := launchdLabelPrefix + strings.TrimPrefix(unitName(env.Project.Name, env.Dir), "docker-autobackup-")
	a := launchAgent{
		Label:                 label,
		Comment:               strings.TrimPrefix(entryMarker(env.Dir), "# ") + markerTail,
		ProgramArguments:      j.args,
		StartCalendarInterval: cal,
		StandardOutPath:       j.logFile,
		StandardErrorPath:     j.logFile,
	}
	if len(j.env) > 0 {
		a.EnvironmentVariables = map[string]string{}
		for _, e := range j.env {
			k, v, _ := strings.Cut(e, "=")
			a.EnvironmentVariables[k] = v
		}
	}
	data, err := plist.MarshalIndent(a, plist.XMLFormat, "\t")
	if err != nil {
		return fmt.Errorf("encode the launch agent: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(j.logFile), 0o700); err != nil {
		return fmt.Errorf("create the log directory: %w", err)
	}
	stale, err := ourAgents(dir, env.Dir)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, label+".plist")
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write the launch agent: %w", err)
	}
	for _, p := range stale {
		if p != path {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove the earlier launch agent: %w", err)
			}
			fmt.Fprintf(w, "Removed the earlier launch agent %s (unload it: launchctl bootout gui/$(id -u) %s)\n", p, text.ShellQuote(p))
		}
	}
	fmt.Fprintf(w, "Wrote %s:\n%s\n", path, data)
	fmt.Fprintf(w, "Output goes to %s. Load it (again after each install):\n  launchctl bootout gui/$(id -u) %s 2>/dev/null; launchctl bootstrap gui/$(id -u) %s\n", j.logFile, text.ShellQuote(path), text.ShellQuote(path))
	return nil
}

func removeLaunchd(w io.Writer, projectDir string, o installOptions) error {
	dir, err := o.agents()
	if err != nil {
		return err
	}
	paths, err := ourAgents(dir, projectDir)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		fmt.Fprintf(w, "No launch agent for %s in %s: nothing to remove.\n", projectDir, dir)
		return nil
	}
	for _, p := range paths {
		fmt.Fprintf(w, "Unload it first if it is loaded: launchctl bootout gui/$(id -u) %s\n", text.ShellQuote(p))
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("remove the launch agent: %w", err)
		}
		fmt.Fprintf(w, "Removed %s\n", p)
	}
	return nil
}

// ourAgents returns our launch agents in dir that run projectDir's
// backups.
func ourAgents(dir, projectDir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, launchdLabelPrefix+"*.plist"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range paths {
		a, err := readLaunchAgent(p)
		if err != nil {
			return nil, err
		}
		if i := slices.Index(a.ProgramArguments, "--project-directory"); i >= 0 && i+1 < len(a.ProgramArguments) && a.ProgramArguments[i+1] == projectDir {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

func readLaunchAgent(path string) (launchAgent, error) {
	var a launchAgent
	data, err := os.ReadFile(path)
	if err != nil {
		return a, fmt.Errorf("read the launch agent: %w", err)
	}
	if _, err := plist.Unmarshal(data, &a); err != nil {
		return a, fmt.Errorf("read the launch agent %s: %w", path, err)
	}
	return a, nil
}
