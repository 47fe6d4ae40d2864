package plugin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

func fakeEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func enabledProject(t *testing.T, schedule string) *globalOptions {
	t.Helper()
	g := testProject(t, "")
	var out bytes.Buffer
	for k, v := range map[string]string{"enabled": "true", "schedule": schedule} {
		if err := runConfigSet(context.Background(), &out, g, k, v); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func TestScheduleInstallCrontab(t *testing.T) {
	ctx := context.Background()
	g := enabledProject(t, "15 2 * * *")
	other := enabledProject(t, "0 4 * * *")
	crontab := filepath.Join(t.TempDir(), "crontab")
	mine := "MAILTO=me@example.com\n# my own job\n*/5 * * * * /usr/local/bin/thing\n"
	if err := os.WriteFile(crontab, []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	o := installOptions{crontabFile: crontab, docker: "/usr/bin/docker",
		env: fakeEnv(map[string]string{"DOCKER_CONFIG": "/home/me/.docker-alt", "DOCKER_HOST": "unix:///run/docker.sock"})}

	var out bytes.Buffer
	if err := runScheduleInstall(ctx, &out, g, o); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(crontab)
	if !strings.HasPrefix(string(first), mine) {
		t.Errorf("the user's lines were changed:\n%s", first)
	}
	line := "15 2 * * * AUTOBACKUP_LOG_TIMESTAMPS=1 DOCKER_HOST=unix:///run/docker.sock /usr/bin/docker --config /home/me/.docker-alt autobackup --project-directory " +
		g.ProjectDir + " run --if-enabled --quiet >>" + filepath.Join(g.ProjectDir, "backups", "autobackup.log") + " 2>&1\n"
	if !strings.HasSuffix(string(first), line) {
		t.Errorf("crontab:\n%s\nwant it to end with:\n%s", first, line)
	}
	if !strings.Contains(out.String(), line) {
		t.Errorf("install does not print what it wrote:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(g.ProjectDir, "backups")); err != nil {
		t.Errorf("the log directory was not created: %v", err)
	}

	// Again: unchanged. Another project: a second entry. A changed
	// schedule: the entry is replaced, not duplicated.
	out.Reset()
	if err := runScheduleInstall(ctx, &out, g, o); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(crontab); !bytes.Equal(again, first) || !strings.Contains(out.String(), "unchanged") {
		t.Errorf("second install changed the crontab or did not say so:\n%s\n%s", again, out.String())
	}
	if err := runScheduleInstall(ctx, &out, other, o); err != nil {
		t.Fatal(err)
	}
	if err := runConfigSet(ctx, &out, g, "schedule", "@daily"); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runScheduleInstall(ctx, &out, g, o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Replaced") {
		t.Errorf("reinstall output:\n%s", out.String())
	}
	content, _ := os.ReadFile(crontab)
	if n := strings.Count(string(content), "--project-directory "+g.ProjectDir+" "); n != 1 {
		t.Errorf("%d entries for the project, want 1:\n%s", n, content)
	}
	if !strings.Contains(string(content), "\n@daily ") || !strings.Contains(string(content), "\n0 4 * * * ") {
		t.Errorf("crontab:\n%s", content)
	}

	// Remove takes out exactly our entry, twice is fine.
	out.Reset()
	if err := runScheduleRemove(ctx, &out, g, o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "@daily") {
		t.Errorf("remove does not show what it removed:\n%s", out.String())
	}
	if err := runScheduleRemove(ctx, &out, other, o); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(crontab); string(got) != mine {
		t.Errorf("after removing both entries:\n%q\nwant the user's lines only:\n%q", got, mine)
	}
	out.Reset()
	if err := runScheduleRemove(ctx, &out, g, o); err != nil || !strings.Contains(out.String(), "nothing to remove") {
		t.Errorf("second remove: %v, %s", err, out.String())
	}
}

func TestScheduleInstallRefusals(t *testing.T) {
	ctx := context.Background()
	crontab := filepath.Join(t.TempDir(), "crontab")
	o := installOptions{crontabFile: crontab, docker: "/usr/bin/docker", env: fakeEnv(nil)}
	for _, tt := range []struct {
		name string
		g    *globalOptions
		o    installOptions
		want string
	}{
		{"@every in a crontab", enabledProject(t, "@every 6h"), o, "crontab has no @every"},
		{"both modes", enabledProject(t, "0 2 * * *"), installOptions{cron: true, systemd: true}, "exclude each other"},
	} {
		var out bytes.Buffer
		err := runScheduleInstall(ctx, &out, tt.g, tt.o)
		if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want a usage error containing %q", tt.name, err, tt.want)
		}
	}
	if _, err := os.Stat(crontab); !os.IsNotExist(err) {
		t.Errorf("a refused install wrote the crontab: %v", err)
	}
}

// TestScheduleInstallDisabled: an entry can be installed before enable,
// and the output says it does nothing until then, with no next run.
func TestScheduleInstallDisabled(t *testing.T) {
	ctx := context.Background()
	for _, o := range []installOptions{
		{crontabFile: filepath.Join(t.TempDir(), "crontab")},
		{systemd: true, unitDir: t.TempDir()},
		{launchd: true, unitDir: t.TempDir()},
	} {
		o.docker, o.env = "/usr/bin/docker", fakeEnv(nil)
		var out bytes.Buffer
		if err := runScheduleInstall(ctx, &out, testProject(t, ""), o); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		if !strings.Contains(got, "Backups are disabled for project shop: this entry does nothing until you run: docker autobackup enable\n") ||
			strings.Contains(got, "Next run") || strings.Contains(got, "anyway") {
			t.Errorf("install while disabled (%+v) says:\n%s", o, got)
		}
	}
}

func TestScheduleInstallSystemd(t *testing.T) {
	ctx := context.Background()
	g := enabledProject(t, "*/30 8-17 * * mon-fri")
	units := t.TempDir()
	o := installOptions{systemd: true, unitDir: units, docker: "/usr/bin/docker", env: fakeEnv(nil)}
	var out bytes.Buffer
	if err := runScheduleInstall(ctx, &out, g, o); err != nil {
		t.Fatal(err)
	}
	if err := runScheduleInstall(ctx, &out, g, o); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(units, "*"))
	if len(files) != 2 {
		t.Fatalf("unit dir holds %v, want a .service and a .timer", files)
	}
	var timer, service string
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if strings.HasSuffix(f, ".timer") {
			timer = string(data)
		} else {
			service = string(data)
		}
	}
	if !strings.Contains(timer, "OnCalendar=Mon..Fri *-*-* 08..17:00,30:00\n") || !strings.Contains(timer, "Persistent=false") {
		t.Errorf("timer:\n%s", timer)
	}
	if !strings.Contains(service, `ExecStart="/usr/bin/docker" "autobackup" "--project-directory" "`+g.ProjectDir+`" "run" "--if-enabled" "--quiet"`) {
		t.Errorf("service:\n%s", service)
	}
	if !strings.Contains(out.String(), "systemctl --user enable --now") {
		t.Errorf("install does not say how to activate the timer:\n%s", out.String())
	}

	out.Reset()
	if err := runScheduleRemove(ctx, &out, g, o); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(units, "*")); len(files) != 0 {
		t.Errorf("left after remove: %v", files)
	}
}

func TestOnCalendar(t *testing.T) {
	tests := []struct{ cron, want string }{
		{"0 2 * * *", "*-*-* 02:00:00"},
		{"*/15 * * * *", "*-*-* *:00,15,30,45:00"},
		{"5 4 1 * *", "*-*-01 04:05:00"},
		{"0 0 * * 0", "Sun *-*-* 00:00:00"},
		{"0 0 * * 7", "Sun *-*-* 00:00:00"},
		{"0 0 * * 1-5", "Mon..Fri *-*-* 00:00:00"},
		{"0 0 * * sat,sun", "Sun,Sat *-*-* 00:00:00"},
		{"30 1 * jan-mar *", "*-01..03-* 01:30:00"},
		{"0 0 * * 0-7", "*-*-* 00:00:00"},
		{"0 */6 * * *", "*-*-* 00,06,12,18:00:00"},
		{"0 2-10/4 * * *", "*-*-* 02,06,10:00:00"},
		{"@daily", "*-*-* 00:00:00"},
		{"@weekly", "Sun *-*-* 00:00:00"},
		{"@hourly", "*-*-* *:00:00"},
		{"@monthly", "*-*-01 00:00:00"},
		{"@yearly", "*-01-01 00:00:00"},
		{"TZ=Europe/Berlin 0 2 * * *", "*-*-* 02:00:00 Europe/Berlin"},
	}
	analyze, _ := exec.LookPath("systemd-analyze")
	for _, tt := range tests {
		got, err := onCalendar(tt.cron)
		if err != nil || got != tt.want {
			t.Errorf("onCalendar(%q) = %q, %v; want %q", tt.cron, got, err, tt.want)
			continue
		}
		if analyze != "" {
			// systemd agrees that it is an expression (when it is installed).
			if out, err := exec.Command(analyze, "calendar", got).CombinedOutput(); err != nil {
				t.Errorf("systemd-analyze calendar %q: %v\n%s", got, err, out)
			}
		}
	}
	for _, bad := range []string{"0 0 1 * 1", "@every 1h", "1 2 3"} {
		if got, err := onCalendar(bad); err == nil || !strings.Contains(err.Error(), "--cron") {
			t.Errorf("onCalendar(%q) = %q, %v; want a refusal suggesting --cron", bad, got, err)
		}
	}
}

func TestScheduleShow(t *testing.T) {
	g := enabledProject(t, "0 2 * * *")
	var out bytes.Buffer
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	if err := runScheduleShow(context.Background(), &out, g, now); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"0 2 * * * (from file), enabled", "2026-11-26 02:00 UTC", "2026-11-30 02:00 UTC"} {
		if !strings.Contains(got, want) {
			t.Errorf("schedule output lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, " UTC\n"); n != 5 {
		t.Errorf("%d run times, want 5:\n%s", n, got)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/docker": "/usr/bin/docker",
		"/my dir/x":       "'/my dir/x'",
		"it's":            `'it'\''s'`,
		"":                "''",
	} {
		if got := text.ShellQuote(in); got != want {
			t.Errorf("text.ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
	// In a crontab % must be escaped.
	line := cronLine("0 2 * * *", "/p", hostJob{args: []string{"/usr/bin/docker", "100%"}, logFile: "/l"})
	if !strings.Contains(line, `100\%`) {
		t.Errorf("cron line does not escape %%: %s", line)
	}
}

// TestScheduleInstallSystemdWithoutUser: with $USER unset (cron, sudo -E,
// containers) the linger hint still names a user, never ”.
func TestScheduleInstallSystemdWithoutUser(t *testing.T) {
	t.Setenv("USER", "")
	var out bytes.Buffer
	o := installOptions{systemd: true, unitDir: t.TempDir(), docker: "/usr/bin/docker", env: fakeEnv(nil)}
	if err := runScheduleInstall(context.Background(), &out, enabledProject(t, "0 2 * * *"), o); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`loginctl enable-linger (\S+)\)`).FindStringSubmatch(out.String())
	if m == nil || m[1] == "''" || m[1] == `""` {
		t.Errorf("linger hint without $USER:\n%s", out.String())
	}
}
