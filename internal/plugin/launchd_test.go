package plugin

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"howett.net/plist"
)

func TestScheduleInstallLaunchd(t *testing.T) {
	ctx := context.Background()
	g := enabledProject(t, "*/30 8-9 * * mon,fri")
	agents := t.TempDir()
	o := installOptions{launchd: true, unitDir: agents, docker: "/usr/local/bin/docker", env: fakeEnv(map[string]string{"DOCKER_HOST": "unix:///x.sock"})}
	var out bytes.Buffer
	for range 2 { // a second install replaces the first
		if err := runScheduleInstall(ctx, &out, g, o); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(agents, "*"))
	if len(files) != 1 || !strings.HasPrefix(filepath.Base(files[0]), "com.docker-autobackup.") || !strings.HasSuffix(files[0], ".plist") {
		t.Fatalf("agent dir holds %v, want one com.docker-autobackup.*.plist", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// Read it the way launchd would: as a property list, not as our struct.
	var got map[string]any
	format, err := plist.Unmarshal(data, &got)
	if err != nil {
		t.Fatalf("parse %s: %v\n%s", files[0], err, data)
	}
	if format != plist.XMLFormat {
		t.Errorf("format %d, want XML", format)
	}
	if label := got["Label"]; label != strings.TrimSuffix(filepath.Base(files[0]), ".plist") {
		t.Errorf("Label %v does not match the file name %s", label, files[0])
	}
	wantArgs := []any{"/usr/local/bin/docker", "autobackup", "--project-directory", g.ProjectDir, "run", "--if-enabled", "--quiet"}
	if !reflect.DeepEqual(got["ProgramArguments"], wantArgs) {
		t.Errorf("ProgramArguments = %v, want %v", got["ProgramArguments"], wantArgs)
	}
	if env, _ := got["EnvironmentVariables"].(map[string]any); env["DOCKER_HOST"] != "unix:///x.sock" {
		t.Errorf("EnvironmentVariables = %v", got["EnvironmentVariables"])
	}
	logFile := filepath.Join(g.ProjectDir, "backups", "autobackup.log")
	if got["StandardOutPath"] != logFile || got["StandardErrorPath"] != logFile {
		t.Errorf("output paths %v, %v; want %s", got["StandardOutPath"], got["StandardErrorPath"], logFile)
	}
	var cal []map[string]uint64
	for _, e := range got["StartCalendarInterval"].([]any) {
		m := map[string]uint64{}
		for k, v := range e.(map[string]any) {
			m[k] = v.(uint64)
		}
		cal = append(cal, m)
	}
	var want []map[string]uint64
	for _, wd := range []uint64{1, 5} {
		for _, h := range []uint64{8, 9} {
			for _, m := range []uint64{0, 30} {
				want = append(want, map[string]uint64{"Weekday": wd, "Hour": h, "Minute": m})
			}
		}
	}
	if !reflect.DeepEqual(cal, want) {
		t.Errorf("StartCalendarInterval =\n %v\nwant\n %v", cal, want)
	}
	if !strings.Contains(out.String(), "launchctl bootstrap gui/") {
		t.Errorf("install does not say how to load the agent:\n%s", out.String())
	}

	out.Reset()
	if err := runScheduleRemove(ctx, &out, g, o); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(agents, "*")); len(files) != 0 {
		t.Errorf("left after remove: %v", files)
	}
	if !strings.Contains(out.String(), "launchctl bootout") {
		t.Errorf("remove does not say how to unload:\n%s", out.String())
	}
}

func TestStartCalendarInterval(t *testing.T) {
	i := func(v int) *int { return &v }
	tests := []struct {
		cron string
		want []calendarEntry
	}{
		{"0 2 * * *", []calendarEntry{{Minute: i(0), Hour: i(2)}}},
		{"@daily", []calendarEntry{{Minute: i(0), Hour: i(0)}}},
		{"@hourly", []calendarEntry{{Minute: i(0)}}},
		{"@weekly", []calendarEntry{{Minute: i(0), Hour: i(0), Weekday: i(0)}}},
		{"@monthly", []calendarEntry{{Minute: i(0), Hour: i(0), Day: i(1)}}},
		{"5 4 1 * *", []calendarEntry{{Minute: i(5), Hour: i(4), Day: i(1)}}},
		{"0 0 * * 7", []calendarEntry{{Minute: i(0), Hour: i(0), Weekday: i(0)}}},
		{"* * * * *", []calendarEntry{{}}},
		{"0 0 * * 0-7", []calendarEntry{{Minute: i(0), Hour: i(0)}}},
		{"0 3 * 1,7 *", []calendarEntry{{Minute: i(0), Hour: i(3), Month: i(1)}, {Minute: i(0), Hour: i(3), Month: i(7)}}},
	}
	for _, tt := range tests {
		got, err := startCalendarInterval(tt.cron)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("startCalendarInterval(%q) = %+v, %v; want %+v", tt.cron, got, err, tt.want)
		}
	}
	for _, bad := range []string{"0 0 1 * 1", "@every 1h", "1 2 3", "TZ=UTC 0 2 * * *", "0-59 0-23 * * *"} {
		if got, err := startCalendarInterval(bad); err == nil {
			t.Errorf("startCalendarInterval(%q) = %+v; want a refusal", bad, got)
		}
	}
}
