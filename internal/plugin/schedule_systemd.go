package plugin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/atomicfile"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

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

func installSystemd(w io.Writer, env *app.Project, j hostJob, o installOptions) error {
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
	who := text.ShellQuote(login)
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
