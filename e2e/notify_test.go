package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
)

// The secrets of the URLs below: none may appear in any output.
const (
	smtpPassword = "smtp-pw-Zq81xKe"
	hookToken    = "hook-tok-5fd1c2a9b7e3"
	pingUUID     = "0b6e3d4c-2f9a-4d1e-8c7b-5a4f3e2d1c0b"
)

// mailpit is a real SMTP server started for one test, with its HTTP API.
type mailpit struct {
	smtpAddr string
	api      string // http://127.0.0.1:PORT
}

// startMailpit starts $AUTOBACKUP_MAILPIT (built by scripts/build-mailpit.sh)
// on random local ports; it skips the test without one, unless CI=true.
func startMailpit(t *testing.T) *mailpit {
	t.Helper()
	bin := os.Getenv("AUTOBACKUP_MAILPIT")
	if bin == "" {
		cache := os.Getenv("AUTOBACKUP_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "autobackup")
		}
		if c := filepath.Join(cache, "mailpit"); isExecutable(c) {
			bin = c
		}
	}
	if bin == "" || !isExecutable(bin) {
		msg := fmt.Sprintf("no mailpit (AUTOBACKUP_MAILPIT=%q): run 'make mailpit'", bin)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: this test must run)")
		}
		t.Skip(msg)
	}
	m := &mailpit{smtpAddr: freeAddr(t)}
	httpAddr := freeAddr(t)
	m.api = "http://" + httpAddr
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--listen", httpAddr, "--smtp", m.smtpAddr,
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--database", filepath.Join(t.TempDir(), "mailpit.db"))
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start mailpit: %v", err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(m.api + "/api/v1/messages")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit did not answer on %s: %v\n%s", m.api, err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return m
}

// freeAddr returns a 127.0.0.1 address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type mail struct {
	Subject string
	To      []struct{ Address string }
	Text    string
}

// messages returns what mailpit received, with their bodies.
func (m *mailpit) messages(t *testing.T) []mail {
	t.Helper()
	var list struct {
		Messages []struct{ ID string }
	}
	getJSON(t, m.api+"/api/v1/messages", &list)
	var out []mail
	for _, s := range list.Messages {
		var msg mail
		getJSON(t, m.api+"/api/v1/message/"+s.ID, &msg)
		out = append(out, msg)
	}
	return out
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// hookReceiver is the webhook and ping endpoint: an HTTP server in the test.
type hookReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []hookRequest
	hang chan struct{} // non-nil: every request hangs until it is closed
}

type hookRequest struct {
	Method, Path, Body string
}

func newHookReceiver(t *testing.T, hang bool) *hookReceiver {
	h := &hookReceiver{}
	if hang {
		h.hang = make(chan struct{})
	}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{r.Method, r.URL.Path, string(b)})
		h.mu.Unlock()
		if h.hang != nil {
			select {
			case <-h.hang:
			case <-time.After(2 * time.Minute):
			}
		}
	}))
	t.Cleanup(func() {
		if h.hang != nil {
			close(h.hang)
		}
		h.Close()
	})
	return h
}

func (h *hookReceiver) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

func (h *hookReceiver) find(path string) (hookRequest, bool) {
	for _, r := range h.requests() {
		if r.Path == path {
			return r, true
		}
	}
	return hookRequest{}, false
}

// monitoring writes the notification, ping and metrics settings.
func monitoring(t *testing.T, p *Project, mp *mailpit, hook *hookReceiver, extra string) {
	t.Helper()
	urls := []string{"generic+" + hook.URL + "/hook/" + hookToken + "?template=json"}
	if mp != nil {
		smtp := "smtp://autobackup:" + smtpPassword + "@" + mp.smtpAddr + "/?from=autobackup@example.com&to=ops@example.com&auth=Plain&encryption=None&usestarttls=No"
		urls = append([]string{smtp}, urls...)
	}
	q := make([]string, len(urls))
	for i, u := range urls {
		q[i] = fmt.Sprintf("%q", u)
	}
	writeFile(t, filepath.Join(p.Dir, "autobackup.toml"), fmt.Sprintf(`[settings]
snapshot = "stream"
notify = [%s]
ping_url = %q
metrics_file = "backups/autobackup.prom"
%s`, strings.Join(q, ", "), hook.URL+"/ping/"+pingUUID, extra))
}

func noSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{smtpPassword, hookToken, pingUUID} {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows the secret %q:\n%s", what, secret, s)
		}
	}
}

func TestNotify(t *testing.T) {
	t.Run("services-not-back", func(t *testing.T) {
		mp := startMailpit(t)
		hook := newHookReceiver(t, false)
		p := NewProject(t)
		monitoring(t, p, mp, hook, "")
		p.Compose(t, "up", "-d", "--wait")
		r := p.Autobackup(t, "run")
		if r.Code != 3 {
			t.Fatalf("exit %d, want 3 (web is not back): %v", r.Code, r)
		}
		noSecrets(t, "run", r.String())

		// The e-mail, urgent and saying how to bring web back.
		var got []mail
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if got = mp.messages(t); len(got) > 0 {
				break
			}
		}
		if len(got) != 1 {
			t.Fatalf("mailpit received %d messages, want 1", len(got))
		}
		m := got[0]
		if !strings.Contains(m.Subject, "URGENT") || !strings.Contains(m.Subject, p.Name) || !strings.Contains(m.Subject, "web") {
			t.Errorf("subject %q, want URGENT, the project and web", m.Subject)
		}
		if len(m.To) != 1 || m.To[0].Address != "ops@example.com" {
			t.Errorf("to %+v, want ops@example.com", m.To)
		}
		host, _ := os.Hostname()
		for _, want := range []string{"SERVICES ARE NOT RUNNING: web", "up -d --wait", "Project:  " + p.Name, "Host:     " + host, "Status:   services_down", "Downtime:", "Size:", "unhealthy"} {
			if !strings.Contains(m.Text, want) {
				t.Errorf("mail body lacks %q:\n%s", want, m.Text)
			}
		}

		// The JSON webhook.
		req, ok := hook.find("/hook/" + hookToken)
		if !ok {
			t.Fatalf("no webhook call: %+v", hook.requests())
		}
		var payload map[string]string
		if err := json.Unmarshal([]byte(req.Body), &payload); err != nil {
			t.Fatalf("webhook body is not JSON: %v\n%s", err, req.Body)
		}
		id := strings.TrimSpace(r.Stdout)
		for k, v := range map[string]string{"project": p.Name, "host": host, "backup_id": id, "status": "services_down", "services_down": "web"} {
			if payload[k] != v {
				t.Errorf("webhook %s = %q, want %q", k, payload[k], v)
			}
		}

		// The pings: start, then fail with the run's output.
		if _, ok := hook.find("/ping/" + pingUUID + "/start"); !ok {
			t.Errorf("no /start ping: %+v", hook.requests())
		}
		fail, ok := hook.find("/ping/" + pingUUID + "/fail")
		if !ok {
			t.Fatalf("no /fail ping: %+v", hook.requests())
		}
		if !strings.Contains(fail.Body, "stopping web") || !strings.Contains(fail.Body, "unhealthy") {
			t.Errorf("/fail ping body lacks the run's output:\n%s", fail.Body)
		}

		// check and status say so, without secrets.
		c := p.Autobackup(t, "check")
		if c.Code != 2 || !strings.HasPrefix(c.Stdout, "AUTOBACKUP CRITICAL - "+p.Name+": services not running since "+id+": web") {
			t.Errorf("check: %v; want exit 2 and a CRITICAL line naming web", c)
		}
		st := p.Autobackup(t, "status")
		if !strings.Contains(st.Stdout, "SERVICES NOT RUNNING: web") {
			t.Errorf("status does not show web down:\n%s", st.Stdout)
		}
		cfg := p.Autobackup(t, "config")
		noSecrets(t, "check, status and config", c.String()+st.String()+cfg.String())
		if !strings.Contains(cfg.Stdout, "autobackup:***@") {
			t.Errorf("config does not show the SMTP URL redacted:\n%s", cfg.Stdout)
		}
	})

	t.Run("always", func(t *testing.T) {
		mp := startMailpit(t)
		hook := newHookReceiver(t, false)
		p := NewProject(t)
		monitoring(t, p, mp, hook, "notify_on = \"always\"\n")
		p.Compose(t, "up", "-d", "--wait")
		p.Compose(t, "exec", "-T", "db", "sh", "-c", "dd if=/dev/urandom of=/data/blob bs=1k count=300 2>/dev/null")
		r := p.Autobackup(t, "run")
		if r.Code != 0 {
			t.Fatalf("run: %v", r)
		}
		noSecrets(t, "run", r.String())
		id := strings.TrimSpace(r.Stdout)
		var got []mail
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if got = mp.messages(t); len(got) > 0 {
				break
			}
		}
		if len(got) != 1 || !strings.Contains(got[0].Subject, "backup ok") || !strings.Contains(got[0].Text, id) || !strings.Contains(got[0].Text, "Status:   success") {
			t.Errorf("mailpit got %+v; want one success mail about %s", got, id)
		}
		req, ok := hook.find("/hook/" + hookToken)
		var payload map[string]string
		if !ok || json.Unmarshal([]byte(req.Body), &payload) != nil || payload["status"] != "success" || payload["backup_id"] != id {
			t.Errorf("webhook: %+v; want a success payload about %s", req, id)
		}
		if _, ok := hook.find("/ping/" + pingUUID); !ok {
			t.Errorf("no success ping: %+v", hook.requests())
		}

		// The metrics file, parsed, agrees with the manifest.
		m, _, err := archive.Open(filepath.Join(p.Dir, "backups"), p.Name, id)
		if err != nil {
			t.Fatal(err)
		}
		fams := parseMetrics(t, filepath.Join(p.Dir, "backups", "autobackup.prom"))
		gauge := func(name string, labels map[string]string) float64 {
			t.Helper()
			fam, ok := fams[name]
			if !ok {
				t.Fatalf("no metric %s", name)
			}
		next:
			for _, s := range fam.GetMetric() {
				have := map[string]string{}
				for _, l := range s.GetLabel() {
					have[l.GetName()] = l.GetValue()
				}
				for k, v := range labels {
					if have[k] != v {
						continue next
					}
				}
				return s.GetGauge().GetValue()
			}
			t.Fatalf("%s: no sample with %v", name, labels)
			return 0
		}
		proj := map[string]string{"project": p.Name}
		if got, want := gauge("autobackup_last_success_timestamp_seconds", proj), float64(m.Started.Unix()); got != want {
			t.Errorf("last success %v, want the manifest's start %v", got, want)
		}
		if got := gauge("autobackup_last_run_success", proj); got != 1 {
			t.Errorf("last run success %v, want 1", got)
		}
		if got := gauge("autobackup_last_run_downtime_seconds", proj); got <= 0 || got > m.DowntimeSeconds+0.01 || got < m.DowntimeSeconds-0.01 {
			t.Errorf("downtime %v, want the manifest's %v", got, m.DowntimeSeconds)
		}
		var total int64
		for _, v := range m.Volumes {
			total += v.ArchiveBytes
			vl := map[string]string{"project": p.Name, "volume": v.Name}
			if got := gauge("autobackup_volume_archive_bytes", vl); got != float64(v.ArchiveBytes) {
				t.Errorf("%s archive bytes %v, want %d", v.Name, got, v.ArchiveBytes)
			}
			if got := gauge("autobackup_volume_bytes", vl); got != float64(v.TarBytes) {
				t.Errorf("%s bytes %v, want %d", v.Name, got, v.TarBytes)
			}
		}
		if len(m.Volumes) != 2 {
			t.Errorf("manifest has %d volumes, want 2", len(m.Volumes))
		}
		if got := gauge("autobackup_last_success_archive_bytes", proj); got < float64(total) {
			t.Errorf("archive bytes %v, want at least the volumes' %d", got, total)
		}

		// check: fresh is OK; with a max age shorter than its age, CRITICAL.
		if c := p.Autobackup(t, "check"); c.Code != 0 || !strings.HasPrefix(c.Stdout, "AUTOBACKUP OK - "+p.Name+": last successful backup "+id) {
			t.Errorf("check of a fresh backup: %v", c)
		}
		time.Sleep(1100 * time.Millisecond)
		if c := p.Autobackup(t, "check", "--max-age", "1s"); c.Code != 2 || !strings.Contains(c.Stdout, "CRITICAL") || !strings.Contains(c.Stdout, "(max 1s)") {
			t.Errorf("check of an old backup: %v", c)
		}
		// Enabled, but nothing runs the schedule: WARNING.
		if r := p.Autobackup(t, "enable"); r.Code != 0 {
			t.Fatal(r)
		}
		if c := p.Autobackup(t, "check"); c.Code != 1 || !strings.Contains(c.Stdout, "nothing runs the schedule") {
			t.Errorf("check of an enabled, unscheduled project: %v", c)
		}
	})

	t.Run("failed", func(t *testing.T) {
		mp := startMailpit(t)
		hook := newHookReceiver(t, false)
		p := NewProject(t)
		monitoring(t, p, mp, hook, "")
		p.Compose(t, "up", "-d", "--wait")
		if r := p.Autobackup(t, "run"); r.Code != 0 {
			t.Fatalf("first run: %v", r)
		}
		if got := mp.messages(t); len(got) != 0 {
			t.Errorf("a success sent mail with notify_on = failure: %+v", got)
		}
		// The next run cannot write its backup: the directory is a file.
		writeFile(t, filepath.Join(p.Dir, "blocked"), "not a directory\n")
		toml := filepath.Join(p.Dir, "autobackup.toml")
		data, err := os.ReadFile(toml)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, toml, strings.Replace(string(data), "[settings]\n", "[settings]\ndirectory = \"blocked\"\n", 1))
		r := p.Autobackup(t, "run")
		if r.Code != 1 {
			t.Fatalf("run into a file: %v; want exit 1", r)
		}
		wantAllUp(t, p, "db", "app")
		var got []mail
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if got = mp.messages(t); len(got) > 0 {
				break
			}
		}
		if len(got) != 1 || !strings.Contains(got[0].Subject, "backup failed") || !strings.Contains(got[0].Text, "Error:") || !strings.Contains(got[0].Text, "blocked") {
			t.Errorf("mailpit got %+v; want one failure mail with the error", got)
		}
		if _, ok := hook.find("/ping/" + pingUUID + "/fail"); !ok {
			t.Errorf("no /fail ping: %+v", hook.requests())
		}
		// The first backup is still fresh: WARNING, not CRITICAL.
		c := p.Autobackup(t, "check")
		if c.Code != 1 || !strings.HasPrefix(c.Stdout, "AUTOBACKUP WARNING - "+p.Name+": last run ") || !strings.Contains(c.Stdout, "failed") {
			t.Errorf("check after a failed run: %v; want a WARNING", c)
		}
		noSecrets(t, "run and check", r.String()+c.String())
	})

	t.Run("never-run", func(t *testing.T) {
		p := NewProject(t)
		c := p.Autobackup(t, "check")
		if c.Code != 2 || !strings.HasPrefix(c.Stdout, "AUTOBACKUP CRITICAL - "+p.Name+": no backup has ever run") {
			t.Errorf("check of a project never backed up: %v", c)
		}
	})

	t.Run("daemon", func(t *testing.T) {
		hook := newHookReceiver(t, false)
		p := NewProject(t)
		monitoring(t, p, nil, hook, "enabled = true\nschedule = \"@every 2s\"\nnotify_on = \"always\"\n")
		p.Compose(t, "up", "-d", "--wait")
		d := startDaemon(t, p, "--poll", "500ms")
		var ok bool
		for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && !ok; time.Sleep(200 * time.Millisecond) {
			_, start := hook.find("/ping/" + pingUUID + "/start")
			_, done := hook.find("/ping/" + pingUUID)
			_, sent := hook.find("/hook/" + hookToken)
			ok = start && done && sent
		}
		if !ok {
			t.Fatalf("the daemon's run did not ping /start and success and notify: %+v", hook.requests())
		}
		// A live daemon counts as what runs the schedule.
		if c := p.Autobackup(t, "check"); c.Code != 0 {
			t.Errorf("check while the daemon serves the project: %v", c)
		}
		if code := d.stop(t, time.Minute); code != 0 {
			t.Errorf("daemon exit %d", code)
		}
		noSecrets(t, "daemon log", d.stderr.String())
		if c := p.Autobackup(t, "check"); c.Code != 1 || !strings.Contains(c.Stdout, "nothing runs the schedule") {
			t.Errorf("check once the daemon is gone: %v; want a WARNING that nothing runs the schedule", c)
		}
	})

	t.Run("hanging", func(t *testing.T) {
		hook := newHookReceiver(t, true)
		p := NewProject(t)
		monitoring(t, p, nil, hook, "notify_on = \"always\"\nnotify_timeout = \"1s\"\n")
		p.Compose(t, "up", "-d", "--wait")
		start := time.Now()
		r := p.Autobackup(t, "run")
		took := time.Since(start)
		if r.Code != 0 {
			t.Fatalf("run with a hanging endpoint: %v", r)
		}
		// The endpoint hangs for two minutes; each delivery gives up after
		// 1s. A bound far above a normal run and far below the hang.
		if took > 45*time.Second {
			t.Errorf("the run took %s: the hanging endpoint held it", took)
		}
		if !strings.Contains(r.Stderr, "retried at the next run") {
			t.Errorf("the run does not warn about the failed deliveries:\n%s", r.Stderr)
		}
		noSecrets(t, "run", r.String())
		st := p.Autobackup(t, "status", "--format", "json")
		var s struct {
			FailedDeliveries []struct{ Kind, Target, Error string } `json:"failed_deliveries"`
			LastBackupStatus string                                 `json:"last_backup_status"`
		}
		if err := json.Unmarshal([]byte(st.Stdout), &s); err != nil {
			t.Fatalf("status json: %v\n%s", err, st.Stdout)
		}
		kinds := map[string]bool{}
		for _, d := range s.FailedDeliveries {
			kinds[d.Kind] = true
		}
		if s.LastBackupStatus != "success" || !kinds["notify"] || !kinds["ping"] {
			t.Errorf("status: %+v; want a successful backup with failed notify and ping deliveries", s)
		}
		noSecrets(t, "status", st.String())
		if c := p.Autobackup(t, "check"); c.Code != 1 || !strings.Contains(c.Stdout, "delivery(ies) failed") {
			t.Errorf("check with failed deliveries: %v", c)
		}
	})
}

func parseMetrics(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return fams
}
