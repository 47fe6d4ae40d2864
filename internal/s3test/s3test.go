// Package s3test starts a real S3 server (versitygw, built by
// scripts/build-versitygw.sh) on 127.0.0.1 for tests. Tests skip when it
// is missing, except with CI=true, where they fail.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Server is a running versitygw.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Data      string // the folder holding the buckets (one sub-folder each)
	port      int
	bin, iam  string
	cmd       *exec.Cmd
	t         testing.TB
}

// Binary returns the versitygw binary from AUTOBACKUP_VERSITYGW; it skips
// the test when there is none, or fails it when CI=true.
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("AUTOBACKUP_VERSITYGW")
	if bin == "" {
		if c := os.Getenv("AUTOBACKUP_CACHE"); c != "" {
			bin = filepath.Join(c, "versitygw")
		}
	}
	if bin != "" {
		if _, err := os.Stat(bin); err == nil {
			return bin
		}
	}
	msg := "no S3 server: set AUTOBACKUP_VERSITYGW to versitygw (make test builds it with scripts/build-versitygw.sh)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Start runs versitygw on a free port with fresh folders and creates
// bucket. It is stopped when the test ends.
func Start(t testing.TB, bucket string) *Server {
	t.Helper()
	bin := Binary(t)
	root := t.TempDir()
	s := &Server{bin: bin, iam: filepath.Join(root, "iam"), Data: filepath.Join(root, "data"), t: t,
		AccessKey: "AKTEST" + randHex(6), SecretKey: "secret-" + randHex(16)}
	for _, d := range []string{s.iam, s.Data, filepath.Join(s.Data, bucket)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(s.port)
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server again (after Kill) on the same port and data.
func (s *Server) Restart() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "--port", "127.0.0.1:"+strconv.Itoa(s.port), "--iam-dir", s.iam, "posix", "--sidecar", filepath.Join(filepath.Dir(s.Data), "sidecar"), s.Data)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	log, err := os.Create(filepath.Join(filepath.Dir(s.Data), "versitygw.log"))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	_ = os.MkdirAll(filepath.Join(filepath.Dir(s.Data), "sidecar"), 0o700)
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	data, _ := os.ReadFile(log.Name())
	s.t.Fatalf("versitygw did not answer on %s:\n%s", s.Endpoint, data)
}

// Kill stops the server at once, as a crash would.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Stop ends the server.
func (s *Server) Stop() { s.Kill() }

// Env returns the AWS_* variables for the server's root credentials.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey, "AWS_REGION=us-east-1"}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// String is for messages.
func (s *Server) String() string { return fmt.Sprintf("versitygw at %s", s.Endpoint) }
