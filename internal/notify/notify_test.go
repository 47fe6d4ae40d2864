package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		in      string
		secrets []string // must not survive
		keep    []string // must survive
	}{
		{"smtp://mailer:s3cretPass@mail.example.com:587/?from=a@example.com&to=b@example.com", []string{"s3cretPass"}, []string{"mailer:***@mail.example.com:587", "to=b@example.com"}},
		{"ntfy://:tk_abcdefghijklmnop@ntfy.sh/backups", []string{"tk_abcdefghijklmnop"}, []string{"ntfy.sh/backups"}},
		{"https://hc-ping.com/eb095278-f28d-448d-87fb-7b75c171a6aa", []string{"eb095278-f28d-448d-87fb-7b75c171a6aa"}, []string{"hc-ping.com"}},
		{"https://kuma.example.com/api/push/Xk2pLm9qRs7T?status=up", []string{"Xk2pLm9qRs7T"}, []string{"kuma.example.com/api/push/"}},
		{"generic+https://hooks.example.com/in?template=json&@Authorization=Bearer+abc123xyz&token=t0ps3cr3t", []string{"abc123xyz", "t0ps3cr3t"}, []string{"hooks.example.com/in", "template=json"}},
		{"telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@channel", []string{"AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"}, []string{"telegram"}},
		{"https://cronitor.link/p/0123456789abcdef0123/nightly", []string{"0123456789abcdef0123"}, []string{"cronitor.link/p/", "nightly"}},
	}
	for _, tt := range tests {
		got := Redact(tt.in)
		for _, s := range tt.secrets {
			if strings.Contains(got, s) {
				t.Errorf("Redact(%q) = %q: still contains %q", tt.in, got, s)
			}
		}
		for _, k := range tt.keep {
			if !strings.Contains(got, k) {
				t.Errorf("Redact(%q) = %q: lost %q", tt.in, got, k)
			}
		}
	}
	// Errors quote URLs in their own spelling: the escaped form goes too.
	r := NewRedactor("https://u:p%40ss-w0rd@h.example/x")
	if got := r.Scrub(`Post "https://u:p%40ss-w0rd@h.example/x": dial tcp: refused (p@ss-w0rd)`); strings.Contains(got, "ss-w0rd") {
		t.Errorf("Scrub left the password: %s", got)
	}
}

func TestPingRequest(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("x", MaxPingBody) + "the end"
	tests := []struct {
		base, kind, body string
		method, url      string
		wantBody         string
	}{
		{"https://hc-ping.com/uuid", PingStart, "", "POST", "https://hc-ping.com/uuid/start", ""},
		{"https://hc-ping.com/uuid", PingSuccess, "ok", "POST", "https://hc-ping.com/uuid", "ok"},
		{"https://hc-ping.com/uuid/", PingFail, long, "POST", "https://hc-ping.com/uuid/fail", long[len(long)-MaxPingBody:]},
		{"https://hc.example/ping/KEY/slug?create=1", PingFail, "", "POST", "https://hc.example/ping/KEY/slug/fail?create=1", ""},
		{"https://kuma.example/api/push/TOKEN?status=up&msg=OK&ping=", PingSuccess, "line 1\nbackup ok", "GET", "https://kuma.example/api/push/TOKEN?msg=backup+ok&ping=&status=up", ""},
		{"https://kuma.example/api/push/TOKEN", PingFail, "boom\n", "GET", "https://kuma.example/api/push/TOKEN?msg=boom&status=down", ""},
		{"https://cronitor.link/p/KEY/job", PingStart, "", "GET", "https://cronitor.link/p/KEY/job?state=run", ""},
		{"https://cronitor.link/p/KEY/job", PingFail, "disk full", "GET", "https://cronitor.link/p/KEY/job?msg=disk+full&state=fail", ""},
	}
	for _, tt := range tests {
		req, err := PingRequest(ctx, tt.base, tt.kind, tt.body)
		if err != nil {
			t.Errorf("PingRequest(%s, %s): %v", tt.base, tt.kind, err)
			continue
		}
		if req.Method != tt.method || req.URL.String() != tt.url {
			t.Errorf("PingRequest(%s, %s) = %s %s, want %s %s", tt.base, tt.kind, req.Method, req.URL, tt.method, tt.url)
		}
		var body []byte
		if req.Body != nil {
			body, _ = io.ReadAll(req.Body)
		}
		if string(body) != tt.wantBody {
			t.Errorf("PingRequest(%s, %s) body of %d bytes, want %d", tt.base, tt.kind, len(body), len(tt.wantBody))
		}
	}
	if req, err := PingRequest(ctx, "https://kuma.example/api/push/T", PingStart, ""); req != nil || err != nil {
		t.Errorf("Uptime Kuma start = %v, %v; want nothing to send", req, err)
	}
	if _, err := PingRequest(ctx, "ftp://x", PingStart, ""); err == nil {
		t.Error("ftp ping URL accepted")
	}
}

func TestPing(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/gone/fail") {
			http.Error(w, "no such check", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := Ping(ctx, srv.URL+"/abc", PingFail, "last lines", time.Second); err != nil {
		t.Fatal(err)
	}
	if want := []string{"POST /abc/fail last lines"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("server got %q, want %q", got, want)
	}
	err := Ping(ctx, srv.URL+"/gone", PingFail, "", time.Second)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("ping of a missing check: %v, want a 404 error", err)
	}
}

func TestSendGenericJSON(t *testing.T) {
	var payload map[string]string
	var header string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Get("X-Token")
		if err := json.NewDecoder(r.Body).Decode(&payload); err != nil {
			t.Errorf("decode: %v", err)
		}
	}))
	defer srv.Close()
	u := "generic+" + srv.URL + "/hook?template=json&@X-Token=sekrit-value-123"
	e := Event{Kind: KindBackup, Project: "shop", Host: "h1", BackupID: "20261201-020000-abcd", Status: StatusServicesDown,
		Down: []string{"db", "web"}, ComposeCmd: "docker compose up -d --wait", Error: "services not back up: db: exited", SizeBytes: 2048, Downtime: 1500 * time.Millisecond}
	res := Send(context.Background(), []string{u}, e, 2*time.Second)
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("Send = %+v", res)
	}
	if strings.Contains(res[0].Target, "sekrit-value-123") {
		t.Errorf("target not redacted: %s", res[0].Target)
	}
	if header != "sekrit-value-123" {
		t.Errorf("header X-Token = %q", header)
	}
	want := map[string]string{"project": "shop", "host": "h1", "backup_id": e.BackupID, "status": "services_down",
		"services_down": "db,web", "size_bytes": "2048", "downtime_seconds": "1.500", "fix": "docker compose up -d --wait"}
	for k, v := range want {
		if payload[k] != v {
			t.Errorf("payload[%s] = %q, want %q", k, payload[k], v)
		}
	}
	if !strings.Contains(payload["message"], "SERVICES ARE NOT RUNNING: db, web") || !strings.Contains(payload["title"], "URGENT") {
		t.Errorf("payload message/title: %q / %q", payload["message"], payload["title"])
	}
}

func TestSendHangingTarget(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	res := Send(context.Background(), []string{"generic+" + srv.URL + "/?template=json"}, Event{Kind: KindBackup, Status: StatusFailed}, 300*time.Millisecond)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Send took %s with a 300ms timeout", took)
	}
	if len(res) != 1 || res[0].Err == nil {
		t.Fatalf("Send to a hanging endpoint = %+v, want an error", res)
	}
}

func TestValidate(t *testing.T) {
	for _, ok := range []string{"ntfy://ntfy.sh/topic", "generic+http://127.0.0.1:9/x?template=json", "smtp://u:p@host:25/?from=a@b.c&to=d@e.f"} {
		if err := Validate(ok); err != nil {
			t.Errorf("Validate(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "nosuchservice://x", "not a url"} {
		if err := Validate(bad); err == nil {
			t.Errorf("Validate(%q) accepted", bad)
		}
	}
	err := Validate("nosuchservice://user:hunter2hunter2@x")
	if err != nil && strings.Contains(err.Error(), "hunter2hunter2") {
		t.Errorf("Validate error shows the password: %v", err)
	}
}
