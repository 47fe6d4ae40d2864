package e2e

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/docker-autobackup/docker-autobackup/internal/s3test"
)

// TestRemote follows a project's off-site copies through their life on a
// real S3 server (versitygw on 127.0.0.1): refused credentials, encrypted
// upload, verify --remote finding a corrupted object, the server killed
// mid-upload, remote retention, and the loss of the host (restore with
// only the compose project, the credentials and the identity). No secret
// may appear in any output or file.
func TestRemote(t *testing.T) {
	srv := s3test.Start(t, "bkt")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	wrongKey := filepath.Join(t.TempDir(), "wrong.txt")
	if err := os.WriteFile(wrongKey, []byte(other.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AB_S3_ENDPOINT", srv.Endpoint)
	t.Setenv("AB_RECIPIENT", id.Recipient().String())
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv(identityEnvName, "")

	var outputs []string // everything the plugin printed, checked for secrets at the end
	p := NewProject(t)
	ab := func(args ...string) Result {
		t.Helper()
		r := p.Autobackup(t, args...)
		outputs = append(outputs, r.Stdout, r.Stderr)
		return r
	}
	p.Compose(t, "up", "-d", "--wait")
	// 40 MB that do not compress: the archive takes three 16 MiB parts.
	p.Compose(t, "exec", "-T", "app", "sh", "-c", "echo hello > /data/greeting && dd if=/dev/urandom of=/data/big bs=1M count=40 2>/dev/null")
	sum := func() string {
		return p.Compose(t, "exec", "-T", "app", "sh", "-c", "cd /data && md5sum greeting big")
	}
	want := sum()
	started := func() string {
		r := Docker(t, "inspect", "--format", "{{.State.StartedAt}}", p.containerID(t, "app"))
		return strings.TrimSpace(r.Stdout)
	}

	// Wrong credentials: refused before anything is stopped.
	t.Run("wrong credentials", func(t *testing.T) {
		t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-"+srv.SecretKey[:4])
		before := started()
		r := ab("run")
		if r.Code != 1 || !strings.Contains(r.Stderr, "AWS_SECRET_ACCESS_KEY") || !strings.Contains(r.Stderr, "nothing was stopped") {
			t.Errorf("run with a wrong secret: want exit 1 naming the credentials and nothing stopped: %v", r)
		}
		if after := started(); after != before {
			t.Errorf("the service was restarted (%s, then %s)", before, after)
		}
	})
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)

	// Encrypted upload and list without the key.
	r := ab("run")
	if r.Code != 0 {
		t.Fatalf("run: %v", r)
	}
	first := strings.TrimSpace(r.Stdout)
	r = ab("list", "--remote", "--format", "json")
	var listed []struct {
		ID        string `json:"id"`
		Location  string `json:"location"`
		Encrypted bool   `json:"encrypted"`
		Project   string `json:"project"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &listed); err != nil || len(listed) != 1 || listed[0].ID != first || !listed[0].Encrypted {
		t.Fatalf("list --remote: want %s encrypted: %v (%v)", first, r, err)
	}
	folder := filepath.Join(srv.Data, "bkt", "fleet", p.Name, first)
	objs, _ := os.ReadDir(folder)
	var names []string
	for _, o := range objs {
		names = append(names, o.Name())
	}
	archiveObj := p.Volume("data") + ".tar.zst.age"
	if got := strings.Join(names, " "); got != archiveObj+" index.json manifest.json.age" {
		t.Errorf("objects of %s: %s", first, got)
	}
	if data, _ := os.ReadFile(filepath.Join(folder, "manifest.json.age")); strings.Contains(string(data), "project_dir") {
		t.Error("the uploaded manifest is readable without the key")
	}

	t.Run("verify --remote", func(t *testing.T) {
		if r := ab("verify", "--remote"); r.Code != 0 || !strings.Contains(r.Stdout, "index only") {
			t.Errorf("verify --remote without identity: %v", r)
		}
		if r := ab("verify", "--remote", "--identity", keyFile); r.Code != 0 || strings.Contains(r.Stdout, "CORRUPT") {
			t.Errorf("verify --remote: %v", r)
		}
		path := filepath.Join(folder, archiveObj)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0x55
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r := ab("verify", "--remote")
		if r.Code != 1 || !strings.Contains(r.Stdout, "CORRUPT "+archiveObj) {
			t.Errorf("verify --remote of a corrupted object: want exit 1 and CORRUPT: %v", r)
		}
		data[len(data)/2] ^= 0x55
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	})

	// The server dies mid-upload: exit 1, local backup kept, status says
	// so, and the next run uploads what the remote lacks.
	var second string
	t.Run("server killed mid-upload", func(t *testing.T) {
		proxy := startKillProxy(t, strings.TrimPrefix(srv.Endpoint, "http://"), 20<<20, srv.Kill)
		if r := ab("config", "set", "remote.endpoint", "http://"+proxy); r.Code != 0 {
			t.Fatal(r)
		}
		r := ab("run")
		second = strings.TrimSpace(r.Stdout)
		if r.Code != 1 || !strings.Contains(r.Stderr, "local only") || second == "" {
			t.Fatalf("run while the server dies: want exit 1, local only, and the ID: %v", r)
		}
		if _, err := os.Stat(filepath.Join(p.Dir, "backups", second, "manifest.json")); err != nil {
			t.Errorf("the local backup is gone: %v", err)
		}
		r = ab("status", "--format", "json")
		var st struct {
			LocalOnly []string `json:"local_only"`
			Next      string   `json:"next_step"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil || len(st.LocalOnly) != 1 || st.LocalOnly[0] != second || !strings.Contains(st.Next, "push") {
			t.Errorf("status after the failed upload: %v (%v)", r, err)
		}
		srv.Restart()
		if r := ab("config", "unset", "remote.endpoint"); r.Code != 0 {
			t.Fatal(r)
		}
		if r := ab("run"); r.Code != 0 || !strings.Contains(r.Stderr, "uploaded "+second) {
			t.Errorf("the next run did not upload %s: %v", second, r)
		}
		r = ab("status", "--format", "json")
		st.LocalOnly = nil
		if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil || len(st.LocalOnly) != 0 {
			t.Errorf("status after the catch-up: %v", r)
		}
	})

	t.Run("remote prune", func(t *testing.T) {
		// Age the first backup on the server only: its index says 2020.
		ix := filepath.Join(folder, "index.json")
		data, err := os.ReadFile(ix)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		m["started"] = "2020-01-01T00:00:00Z"
		data, _ = json.Marshal(m)
		if err := os.WriteFile(ix, data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, kv := range [][2]string{{"remote.retention_days", "30"}, {"remote.keep_min", "1"}} {
			if r := ab("config", "set", kv[0], kv[1]); r.Code != 0 {
				t.Fatal(r)
			}
		}
		r := ab("prune")
		if r.Code != 0 || !strings.Contains(r.Stdout, "deleted from remote") || !strings.Contains(r.Stdout, first) {
			t.Errorf("prune: want %s deleted from the remote: %v", first, r)
		}
		if _, err := os.Stat(folder); !os.IsNotExist(err) {
			if left, _ := os.ReadDir(folder); len(left) > 0 {
				t.Errorf("objects of %s left on the server: %v", first, left)
			}
		}
		if _, err := os.Stat(filepath.Join(p.Dir, "backups", first)); err != nil {
			t.Errorf("remote retention deleted the local backup: %v", err)
		}
		r = ab("list", "--remote", "--all-projects", "--format", "json")
		listed = nil
		if err := json.Unmarshal([]byte(r.Stdout), &listed); err != nil {
			t.Fatalf("fleet list: %v", r)
		}
		seen := map[string]bool{}
		for _, l := range listed {
			if l.Project == p.Name {
				seen[l.ID] = true
			}
		}
		if seen[first] || len(seen) != 2 {
			t.Errorf("fleet list after prune: want two backups of %s, not %s: %v", p.Name, first, r)
		}
	})

	// The host is gone: no backup folder, no autobackup.toml, an empty
	// volume. Only the compose project, the credentials and the identity.
	t.Run("host loss", func(t *testing.T) {
		p.Compose(t, "down", "-v")
		for _, f := range []string{"backups", "autobackup.toml"} {
			if err := os.RemoveAll(filepath.Join(p.Dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		p.Compose(t, "up", "-d", "--wait")
		r := ab("list")
		t.Logf("list on a fresh host:\n%s", r.Stdout)
		if r.Code != 0 || !strings.Contains(r.Stdout, second) || !strings.Contains(r.Stdout, "remote") {
			t.Fatalf("list on a fresh host: %v", r)
		}
		before := started()
		r = ab("status")
		t.Logf("status on a fresh host:\n%s", r.Stdout)
		if r := ab("restore", "--yes"); r.Code != 2 || !strings.Contains(r.Stderr, "identity") {
			t.Errorf("restore without an identity: want exit 2 naming the identity: %v", r)
		}
		if r := ab("restore", "--yes", "--identity", wrongKey); r.Code != 2 || !strings.Contains(r.Stderr, "no identity matches") {
			t.Errorf("restore with a wrong identity: want exit 2: %v", r)
		}
		if after := started(); after != before {
			t.Errorf("a refused restore restarted the service (%s, then %s)", before, after)
		}
		t.Setenv(identityEnvName, keyFile)
		r = ab("restore", "latest", "--yes")
		if r.Code != 0 || !strings.Contains(r.Stderr, "downloading backup") {
			t.Fatalf("restore on a fresh host: %v", r)
		}
		if got := sum(); got != want {
			t.Errorf("restored data differs:\n got %s\nwant %s", got, want)
		}
	})

	// No secret anywhere: outputs, the settings and history files (as far
	// as the host-loss case left them), the manifests.
	files, _ := filepath.Glob(filepath.Join(p.Dir, "autobackup*.toml"))
	ms, _ := filepath.Glob(filepath.Join(p.Dir, "backups", "*", "manifest.json"))
	if len(ms) == 0 {
		t.Error("no manifest to check for secrets")
	}
	for _, f := range append(files, ms...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("read %s: %v", f, err)
		}
		outputs = append(outputs, string(data))
	}
	for _, s := range outputs {
		if strings.Contains(s, srv.SecretKey) || strings.Contains(s, id.String()) {
			t.Fatalf("a secret appears in output or a file:\n%s", s)
		}
	}
}

const identityEnvName = "AUTOBACKUP_IDENTITY_FILE"

// startKillProxy forwards TCP connections to upstream and calls kill once
// more than limit bytes went upstream, then drops every connection: a
// server that dies in the middle of an upload.
func startKillProxy(t *testing.T, upstream string, limit int64, kill func()) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	var once sync.Once
	var mu sync.Mutex
	var conns []net.Conn
	dropAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", upstream, 2*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if sent.Add(int64(n)) > limit {
							once.Do(func() { kill(); dropAll() })
							return
						}
						if _, werr := up.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						up.Close()
						return
					}
				}
			}()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); dropAll() })
	return ln.Addr().String()
}
