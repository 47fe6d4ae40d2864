package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// receiver is a local HTTP endpoint that records what it gets, and hangs
// while hang is set.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []recorded
	hang    bool
	release chan struct{}
}

type recorded struct {
	Method, Path, Body string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{release: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		hang := r.hang
		r.reqs = append(r.reqs, recorded{req.Method, req.URL.Path, string(b)})
		r.mu.Unlock()
		if hang {
			<-r.release
		}
	}))
	t.Cleanup(func() { close(r.release); r.Close() })
	return r
}

func (r *receiver) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

func (r *receiver) setHang(h bool) {
	r.mu.Lock()
	r.hang = h
	r.mu.Unlock()
}

const pingToken = "7f3c2a10-9b8e-4d6f-a1b2-c3d4e5f60718"
const hookToken = "hook-secret-0123456789"

// monitoredProject is a project whose notifications, pings and metrics go
// to rcv and dir.
func monitoredProject(t *testing.T, rcv *receiver, notifyOn string) (*globalOptions, string) {
	t.Helper()
	g := testProject(t, "")
	metricsPath := filepath.Join(t.TempDir(), "autobackup.prom")
	var out bytes.Buffer
	for _, kv := range [][2]string{
		{"notify", "generic+" + rcv.URL + "/hook/" + hookToken + "?template=json"},
		{"notify_on", notifyOn},
		{"notify_timeout", "500ms"},
		{"ping_url", rcv.URL + "/ping/" + pingToken},
		{"metrics_file", metricsPath},
	} {
		if err := runConfigSet(context.Background(), &out, g, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if s := out.String(); strings.Contains(s, pingToken) || strings.Contains(s, hookToken) {
		t.Errorf("config set shows a secret:\n%s", s)
	}
	return g, metricsPath
}

// fakeBackup writes a backup directory with a manifest and records the run
// as recordRun does.
func fakeBackup(t *testing.T, env *app.Project, id string, started time.Time, runErr error) *backup.Result {
	t.Helper()
	res := &backup.Result{ID: id, Started: started, Finished: started.Add(3 * time.Second), Downtime: 1200 * time.Millisecond}
	if runErr == nil {
		res.Stopped = []string{"db"}
	}
	if runErr == nil || errors.As(runErr, new(*compose.RestartError)) {
		p, err := archive.Begin(env.BackupDir, id, env.Project.Name)
		if err != nil {
			t.Fatal(err)
		}
		m := &archive.Manifest{FormatVersion: 1, ID: id, Project: env.Project.Name, ProjectDir: env.Dir, Mode: "stream", Started: started, Finished: res.Finished,
			Volumes: []archive.Volume{{Name: "shop_dbdata", Key: "dbdata", Driver: "local", Archive: "shop_dbdata.tar.zst", ArchiveBytes: 4242, TarBytes: 10240, SHA256: strings.Repeat("0", 64)}}}
		if err := os.WriteFile(filepath.Join(p.Path(), "shop_dbdata.tar.zst"), make([]byte, 4242), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := p.Commit(m); err != nil {
			t.Fatal(err)
		}
		res.Path, res.Manifest, res.Volumes, res.SizeBytes = filepath.Join(env.BackupDir, id), m, m.Volumes, 4242
	}
	if err := (&app.Service{}).RecordRun(env, "", res, runErr, false); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestReportFailureAndRetry(t *testing.T) {
	rcv := newReceiver(t)
	g, metricsPath := monitoredProject(t, rcv, "failure")
	ctx := context.Background()
	env, err := loadProject(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	warn := func(s string) { warnings = append(warnings, s) }

	// A successful run with notify_on = failure: a ping, no notification.
	warnService(warn).PingStart(ctx, env)
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	res := fakeBackup(t, env, "20261201-020000-aaaa", t0, nil)
	app.ReportBackup(ctx, env, res, nil, false, "", warn)
	got := rcv.take()
	if len(got) != 2 || got[0].Path != "/ping/"+pingToken+"/start" || got[1].Path != "/ping/"+pingToken {
		t.Fatalf("after a success the receiver got %+v; want the start ping and the success ping only", got)
	}

	// A run whose services did not come back: urgent notification, /fail
	// ping with the output, services recorded as down.
	out := newRunOutput()
	rep := out.tee(nil)
	progress.Send(rep, progress.Event{Kind: progress.ServiceStop, Service: "db"})
	progress.Send(rep, progress.Event{Kind: progress.Warning, Message: "db exited with code 1 on start"})
	restart := &compose.RestartError{Failed: map[string]error{"db": errors.New("exited (1)")}}
	res = fakeBackup(t, env, "20261201-030000-bbbb", t0.Add(time.Hour), restart)
	app.ReportBackup(ctx, env, res, restart, false, out.String(), warn)
	got = rcv.take()
	var hook *recorded
	var fail *recorded
	for i := range got {
		switch got[i].Path {
		case "/hook/" + hookToken:
			hook = &got[i]
		case "/ping/" + pingToken + "/fail":
			fail = &got[i]
		}
	}
	if hook == nil || fail == nil {
		t.Fatalf("receiver got %+v; want a notification and a /fail ping", got)
	}
	var payload map[string]string
	if err := json.Unmarshal([]byte(hook.Body), &payload); err != nil {
		t.Fatalf("webhook body is not JSON: %v\n%s", err, hook.Body)
	}
	want := map[string]string{"project": env.Project.Name, "backup_id": "20261201-030000-bbbb", "status": "services_down", "services_down": "db", "downtime_seconds": "1.200", "size_bytes": "4242"}
	for k, v := range want {
		if payload[k] != v {
			t.Errorf("payload[%s] = %q, want %q", k, payload[k], v)
		}
	}
	host, _ := os.Hostname()
	if payload["host"] != host || !strings.Contains(payload["fix"], "up -d --wait") || !strings.Contains(payload["error"], "db: exited (1)") {
		t.Errorf("payload lacks host, fix or error: %v", payload)
	}
	if !strings.Contains(fail.Body, "stopping db") || !strings.Contains(fail.Body, "WARNING  db exited with code 1") {
		t.Errorf("/fail ping body lacks the run's output:\n%s", fail.Body)
	}
	f, err := state.Load(env.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.Monitor.ServicesDown, ",") != "db" || f.Monitor.ServicesDownBy != "20261201-030000-bbbb" {
		t.Errorf("monitor = %+v, want db down since the second run", f.Monitor)
	}

	// The metrics file agrees with the history and the manifest.
	checkMetrics(t, metricsPath, env.Project.Name, map[string]float64{
		"autobackup_last_success_timestamp_seconds": float64(t0.Unix()),
		"autobackup_services_down":                  1,
		"autobackup_last_run_downtime_seconds":      1.2,
		"autobackup_last_success_archive_bytes":     4242,
	})

	// The receiver hangs: the run is held no longer than the timeout, and
	// the failures are recorded, shown and retried.
	rcv.setHang(true)
	start := time.Now()
	runErr := errors.New("snapshot: disk full")
	res = fakeBackup(t, env, "20261201-040000-cccc", t0.Add(2*time.Hour), runErr)
	warnService(warn).PingStart(ctx, env)
	app.ReportBackup(ctx, env, res, runErr, false, "", warn)
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("a hanging endpoint held the run for %s (timeout 500ms per delivery)", took)
	}
	rcv.take()
	f, _ = state.Load(env.StatePath)
	kinds := map[string]bool{}
	for _, p := range f.Monitor.Pending {
		kinds[p.Kind] = true
		if strings.Contains(p.Target, pingToken) || strings.Contains(p.Target, hookToken) || strings.Contains(p.Error, pingToken) {
			t.Errorf("pending delivery shows a secret: %+v", p)
		}
	}
	if !kinds[state.DeliveryNotify] || !kinds[state.DeliveryPing] {
		t.Errorf("pending deliveries %+v; want the notification and the ping", f.Monitor.Pending)
	}
	var status bytes.Buffer
	if err := runStatus(ctx, &status, g, statusOptions{last: 5}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status.String(), "Failed deliveries (retried at the next run)") || !strings.Contains(status.String(), "SERVICES NOT RUNNING") {
		t.Errorf("status does not show the failed deliveries and the services:\n%s", status.String())
	}
	var js bytes.Buffer
	if err := runStatus(ctx, &js, g, statusOptions{format: "json", last: 5}); err != nil {
		t.Fatal(err)
	}
	var cfg bytes.Buffer
	if err := runConfigShow(ctx, &cfg, g, configOptions{}); err != nil {
		t.Fatal(err)
	}
	var cfgJSON bytes.Buffer
	if err := runConfigShow(ctx, &cfgJSON, g, configOptions{format: "json"}); err != nil {
		t.Fatal(err)
	}
	all := status.String() + js.String() + cfg.String() + cfgJSON.String() + strings.Join(warnings, "\n")
	for _, secret := range []string{pingToken, hookToken} {
		if strings.Contains(all, secret) {
			t.Errorf("a secret shows in status, config or warnings:\n%s", all)
		}
	}
	if !strings.Contains(cfg.String(), "/hook/***") {
		t.Errorf("config show does not show the redacted URL:\n%s", cfg.String())
	}

	// The endpoint is back: the next run retries the earlier notification
	// and clears the record; the services came back too.
	rcv.setHang(false)
	res = fakeBackup(t, env, "20261201-050000-dddd", t0.Add(3*time.Hour), nil)
	app.ReportBackup(ctx, env, res, nil, false, "", warn)
	got = rcv.take()
	retried := false
	for _, r := range got {
		if r.Path == "/hook/"+hookToken && strings.Contains(r.Body, "20261201-040000-cccc") && strings.Contains(r.Body, "Sent late") {
			retried = true
		}
	}
	if !retried {
		t.Errorf("the failed notification of 20261201-040000-cccc was not sent again: %+v", got)
	}
	f, _ = state.Load(env.StatePath)
	if len(f.Monitor.Pending) != 0 || len(f.Monitor.ServicesDown) != 0 {
		t.Errorf("monitor after a good run = %+v; want nothing pending, nothing down", f.Monitor)
	}
}

func TestReportAlways(t *testing.T) {
	rcv := newReceiver(t)
	g, _ := monitoredProject(t, rcv, "always")
	ctx := context.Background()
	env, err := loadProject(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	res := fakeBackup(t, env, "20261201-020000-aaaa", time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC), nil)
	app.ReportBackup(ctx, env, res, nil, false, "", func(s string) { t.Errorf("warning: %s", s) })
	var payload map[string]string
	for _, r := range rcv.take() {
		if r.Path == "/hook/"+hookToken {
			if err := json.Unmarshal([]byte(r.Body), &payload); err != nil {
				t.Fatal(err)
			}
		}
	}
	if payload["status"] != "success" || payload["backup_id"] != "20261201-020000-aaaa" {
		t.Errorf("notify_on = always: payload %v, want a success notification", payload)
	}
}

func checkMetrics(t *testing.T, path, project string, want map[string]float64) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(fh)
	if err != nil {
		t.Fatalf("metrics file does not parse: %v", err)
	}
	for name, v := range want {
		fam, ok := fams[name]
		if !ok || len(fam.GetMetric()) == 0 {
			t.Errorf("no metric %s", name)
			continue
		}
		m := fam.GetMetric()[0]
		if l := m.GetLabel(); len(l) == 0 || l[0].GetValue() != project {
			t.Errorf("%s labels %v, want project=%s", name, l, project)
		}
		if got := m.GetGauge().GetValue(); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
}

func TestReportRestore(t *testing.T) {
	rcv := newReceiver(t)
	g, _ := monitoredProject(t, rcv, "failure")
	ctx := context.Background()
	env, err := loadProject(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	warn := func(s string) { t.Errorf("warning: %s", s) }
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	restart := &compose.RestartError{Failed: map[string]error{"db": errors.New("unhealthy")}}
	rec := state.Restore{ID: "20261201-020500-rrrr", BackupID: "20261201-020000-aaaa", Started: t0, Finished: t0.Add(time.Minute), Volumes: []string{"shop_dbdata"}, Status: state.StatusFailed, Error: restart.Error()}
	app.ReportRestore(ctx, env, rec, &backup.RestoreResult{Stopped: []string{"db"}, Downtime: time.Second}, restart, warn)
	var payload map[string]string
	for _, r := range rcv.take() {
		if r.Path == "/hook/"+hookToken {
			if err := json.Unmarshal([]byte(r.Body), &payload); err != nil {
				t.Fatal(err)
			}
		}
		if strings.HasPrefix(r.Path, "/ping/") {
			t.Errorf("a restore pinged the backup check: %+v", r)
		}
	}
	if payload["kind"] != "restore" || payload["status"] != "services_down" || payload["services_down"] != "db" || !strings.Contains(payload["title"], "URGENT") {
		t.Errorf("restore notification %v; want an urgent services_down restore", payload)
	}
	f, _ := state.Load(env.StatePath)
	if strings.Join(f.Monitor.ServicesDown, ",") != "db" {
		t.Errorf("services down %v, want db", f.Monitor.ServicesDown)
	}

	// A good restore that started db again: no notification (failure only),
	// and db is no longer recorded as down.
	rec.Status, rec.Error = state.StatusSuccess, ""
	app.ReportRestore(ctx, env, rec, &backup.RestoreResult{Stopped: []string{"db"}}, nil, warn)
	if got := rcv.take(); len(got) != 0 {
		t.Errorf("a successful restore notified with notify_on = failure: %+v", got)
	}
	f, _ = state.Load(env.StatePath)
	if len(f.Monitor.ServicesDown) != 0 {
		t.Errorf("services down %v after a good restore, want none", f.Monitor.ServicesDown)
	}
}

func TestReportNotStarted(t *testing.T) {
	rcv := newReceiver(t)
	g, _ := monitoredProject(t, rcv, "failure")
	ctx := context.Background()
	env, err := loadProject(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	warnService(func(s string) { t.Errorf("warning: %s", s) }).BackupNotStarted(ctx, env, errors.New("cannot reach the Docker engine: connection refused"))
	var hook, fail bool
	for _, r := range rcv.take() {
		switch r.Path {
		case "/hook/" + hookToken:
			hook = strings.Contains(r.Body, `"status":"failed"`) && strings.Contains(r.Body, "cannot reach the Docker engine")
		case "/ping/" + pingToken + "/fail":
			fail = strings.Contains(r.Body, "cannot reach the Docker engine")
		}
	}
	if !hook || !fail {
		t.Errorf("a backup that could not start: notification %v, /fail ping %v; want both", hook, fail)
	}
}

// warnService is a service that hands its warnings to warn.
func warnService(warn func(string)) *app.Service {
	return &app.Service{Reporter: progress.Func(func(e progress.Event) {
		if e.Kind == progress.Warning {
			warn(e.Message)
		}
	})}
}
