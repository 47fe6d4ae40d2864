package plugin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/cli/cli"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// withScheduler makes findScheduler report by for the test.
func withScheduler(t *testing.T, by string) {
	t.Helper()
	old := scheduledBy
	scheduledBy = func(*app.Project) string { return by }
	t.Cleanup(func() { scheduledBy = old })
}

func TestCheck(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	backupAt := func(id string, at time.Time, status, errMsg string) func(f *state.File) {
		return func(f *state.File) {
			f.RecordBackup(state.Backup{ID: id, Started: at, Finished: at.Add(time.Minute), Status: status, Error: errMsg, Path: "backups/" + id})
		}
	}
	tests := []struct {
		name      string
		enabled   bool
		scheduler string
		maxAge    time.Duration
		history   []func(f *state.File)
		wantCode  int
		want      []string
	}{
		{name: "never run", wantCode: CheckCritical, want: []string{"AUTOBACKUP CRITICAL - shop: no backup has ever run"}},
		{name: "fresh", history: []func(*state.File){backupAt("20261201-020000-aaaa", now.Add(-10*time.Hour), state.StatusSuccess, "")},
			wantCode: CheckOK, want: []string{"AUTOBACKUP OK - shop: last successful backup 20261201-020000-aaaa is 10h0m0s old", "| last_success_age=36000s;;93600"}},
		{name: "old", history: []func(*state.File){backupAt("20261129-020000-aaaa", now.Add(-58*time.Hour), state.StatusSuccess, "")},
			wantCode: CheckCritical, want: []string{"CRITICAL", "is 58h0m0s old (max 26h0m0s)"}},
		{name: "old with a shorter max age", maxAge: time.Hour, history: []func(*state.File){backupAt("20261201-020000-aaaa", now.Add(-10*time.Hour), state.StatusSuccess, "")},
			wantCode: CheckCritical, want: []string{"(max 1h0m0s)"}},
		{name: "failed after a fresh one", history: []func(*state.File){
			backupAt("20261201-020000-aaaa", now.Add(-10*time.Hour), state.StatusSuccess, ""),
			backupAt("20261201-110000-bbbb", now.Add(-time.Hour), state.StatusFailed, "snapshot: disk full"),
		}, wantCode: CheckWarning, want: []string{"AUTOBACKUP WARNING - shop: last run 20261201-110000-bbbb failed: snapshot: disk full"}},
		{name: "only failures", history: []func(*state.File){backupAt("20261201-110000-bbbb", now.Add(-time.Hour), state.StatusFailed, "boom")},
			wantCode: CheckCritical, want: []string{"CRITICAL - shop: no successful backup yet", "last run 20261201-110000-bbbb failed: boom"}},
		{name: "services down", history: []func(*state.File){
			backupAt("20261201-110000-bbbb", now.Add(-time.Hour), state.StatusFailed, "services not back up: db: exited"),
			func(f *state.File) { f.SetServicesDown("20261201-110000-bbbb", now, []string{"db"}) },
		}, wantCode: CheckCritical, want: []string{"CRITICAL - shop: services not running since 20261201-110000-bbbb: db (bring them back: docker compose"}},
		{name: "enabled, nothing schedules it", enabled: true, history: []func(*state.File){backupAt("20261201-020000-aaaa", now.Add(-time.Hour), state.StatusSuccess, "")},
			wantCode: CheckWarning, want: []string{"WARNING", "nothing runs the schedule"}},
		{name: "enabled and scheduled", enabled: true, scheduler: "crontab", history: []func(*state.File){backupAt("20261201-020000-aaaa", now.Add(-time.Hour), state.StatusSuccess, "")},
			wantCode: CheckOK, want: []string{"OK"}},
		{name: "failed delivery", history: []func(*state.File){
			backupAt("20261201-020000-aaaa", now.Add(-time.Hour), state.StatusSuccess, ""),
			func(f *state.File) {
				f.RecordDelivery(state.Delivery{Kind: state.DeliveryPing, Target: "https://hc-ping.com/***", Event: "20261201-020000-aaaa", Time: now, Error: "no answer"})
			},
		}, wantCode: CheckWarning, want: []string{"WARNING", "1 notification/ping/metrics delivery(ies) failed, latest ping to https://hc-ping.com/***: no answer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withScheduler(t, tt.scheduler)
			g := testProject(t, "")
			err := state.Update(stateFile(g), func(f *state.File) error {
				f.Settings.Enabled = &tt.enabled
				for _, h := range tt.history {
					h(f)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			maxAge := tt.maxAge
			if maxAge == 0 {
				maxAge = 26 * time.Hour
			}
			var out bytes.Buffer
			err = runCheck(context.Background(), &out, g, checkOptions{maxAge: maxAge}, now)
			code := CheckOK
			var ec exitCodeErr
			if errors.As(err, &ec) {
				code = ec.code
			} else if err != nil {
				t.Fatalf("check: %v", err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; output %s", code, tt.wantCode, out.String())
			}
			if err != nil {
				var st cli.StatusError
				if !errors.As(exitError(err), &st) || st.StatusCode != tt.wantCode {
					t.Errorf("the CLI would exit %d, want %d", st.StatusCode, tt.wantCode)
				}
			}
			if n := strings.Count(out.String(), "\n"); n != 1 {
				t.Errorf("%d lines, want one:\n%s", n, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestCheckUnknown(t *testing.T) {
	g := testProject(t, "")
	if err := writeFile(stateFile(g), "[settings]\nbogus = 1\n"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := runCheck(context.Background(), &out, g, checkOptions{maxAge: time.Hour}, time.Now())
	var ec exitCodeErr
	if !errors.As(err, &ec) || ec.code != CheckUnknown || !strings.HasPrefix(out.String(), "AUTOBACKUP UNKNOWN - ") {
		t.Errorf("check of a broken file: %v, %q; want exit 3 and an UNKNOWN line", err, out.String())
	}
}

func TestIsDaemon(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"/root/.docker/cli-plugins/docker-autobackup", "autobackup", "daemon"}, true},
		{[]string{"/usr/libexec/docker/cli-plugins/docker-autobackup", "autobackup", "--project-directory", "/p", "daemon", "--poll", "5s"}, true},
		{[]string{"/root/.docker/cli-plugins/docker-autobackup", "autobackup", "run"}, false},
		{[]string{"docker", "autobackup", "daemon"}, false}, // the CLI itself: its plugin child is the one to find
		{[]string{"/bin/sh", "-c", "docker-autobackup autobackup daemon"}, false},
	}
	for _, tt := range tests {
		if got := isDaemon(tt.args); got != tt.want {
			t.Errorf("isDaemon(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
	if got := flagValues([]string{"x", "--project-directory", "/a", "--project-directory=/b"}, "--project-directory"); strings.Join(got, ",") != "/a,/b" {
		t.Errorf("flagValues = %v", got)
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
