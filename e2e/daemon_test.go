package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// syncBuffer is a bytes.Buffer safe for a writing process and a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemon is a running `docker autobackup daemon`.
type daemon struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
}

func startDaemon(t *testing.T, p *Project, args ...string) *daemon {
	t.Helper()
	d := &daemon{stderr: &syncBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command("docker", append([]string{"autobackup", "daemon"}, args...)...)
	d.cmd.Dir = p.Dir
	d.cmd.Stdout, d.cmd.Stderr = d.stderr, d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		t.Logf("daemon output:\n%s", d.stderr.String())
	})
	return d
}

// stop sends SIGTERM to the docker CLI running the daemon, as a service
// manager would, and waits for it to exit.
func (d *daemon) stop(t *testing.T, within time.Duration) int {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("the daemon did not exit within %s of SIGTERM", within)
		return -1
	}
}

func loadState(t *testing.T, p *Project) *state.File {
	t.Helper()
	f, err := state.Load(filepath.Join(p.Dir, state.FileName))
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	return f
}

func configure(t *testing.T, p *Project, kv ...string) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if r := p.Autobackup(t, "config", "set", kv[i], kv[i+1]); r.Code != 0 {
			t.Fatalf("config set %s %s: %v", kv[i], kv[i+1], r)
		}
	}
}

// TestDaemon: the daemon fires a real backup of a real project on a short
// schedule, and exits cleanly on SIGTERM with the service running.
func TestDaemon(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	configure(t, p, "enabled", "true", "schedule", "@every 2s")

	ev := p.StartEvents(t)
	d := startDaemon(t, p, "--poll", "500ms")
	deadline := time.Now().Add(2 * time.Minute)
	for loadState(t, p).State.LastSuccessID == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no successful backup recorded within 2 minutes")
		}
		select {
		case <-d.done:
			t.Fatalf("the daemon exited: %v", d.cmd.ProcessState)
		case <-time.After(500 * time.Millisecond):
		}
	}
	if code := d.stop(t, 2*time.Minute); code != 0 {
		t.Errorf("daemon exit code after SIGTERM = %d, want 0", code)
	}
	evs := ev.Stop()

	f := loadState(t, p)
	m, _, err := archive.Open(filepath.Join(p.Dir, "backups"), p.Name, f.State.LastSuccessID)
	if err != nil {
		t.Fatalf("the recorded backup %s: %v", f.State.LastSuccessID, err)
	}
	if len(m.Volumes) != 1 || m.Volumes[0].Name != p.Volume("data") {
		t.Errorf("backup volumes = %+v, want %s", m.Volumes, p.Volume("data"))
	}
	// The engine saw the service stopped and started again for it.
	if !Before(evs, "store", "die", "store", "start") {
		t.Errorf("no stop then start of store; lifecycle: %v", Lifecycle(evs))
	}
	if status, _ := p.ContainerState(t, "store"); status != "running" {
		t.Errorf("store after the daemon stopped: %s, want running", status)
	}
	if !strings.Contains(d.stderr.String(), "backup complete") {
		t.Errorf("the daemon did not log the run:\n%s", d.stderr.String())
	}
}

// TestDaemonSIGTERM: SIGTERM while a backup has services stopped aborts it,
// brings the service back, records the run as interrupted and leaves no
// partial backup.
func TestDaemonSIGTERM(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	configure(t, p, "enabled", "true", "schedule", "@every 2s", "stop_timeout", "20s")

	// The engine's "kill" event is the stop's SIGTERM reaching the service:
	// the backup is in its downtime window (the service ignores it for 20s).
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	events := exec.CommandContext(ctx, "docker", "events", "--format", "{{.Action}}",
		"--filter", "label="+projectLabel+"="+p.Name, "--filter", "type=container", "--filter", "event=kill")
	out, err := events.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Start(); err != nil {
		t.Fatal(err)
	}
	killed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			close(killed)
		}
		for sc.Scan() {
		}
	}()

	d := startDaemon(t, p, "--poll", "500ms")
	select {
	case <-killed:
	case <-d.done:
		t.Fatalf("the daemon exited early: %v", d.cmd.ProcessState)
	case <-ctx.Done():
		t.Fatal("the daemon did not start stopping the service within 2 minutes")
	}
	time.Sleep(time.Second) // well inside the 20s stop
	start := time.Now()
	code := d.stop(t, 2*time.Minute)
	t.Logf("daemon exited %d, %s after SIGTERM", code, time.Since(start).Round(time.Millisecond))
	cancel()

	// The engine may still be carrying out the aborted stop (it kills after
	// stop_timeout): look again once that has passed.
	time.Sleep(22 * time.Second)
	if status, _ := p.ContainerState(t, "slow"); status != "running" {
		t.Errorf("slow after SIGTERM during the backup (and stop_timeout later): %s, want running", status)
	}
	f := loadState(t, p)
	if len(f.Backups) == 0 {
		t.Fatal("the interrupted run is not recorded")
	}
	last := f.Backups[len(f.Backups)-1]
	if last.Status != state.StatusInterrupted || f.State.LastBackupStatus != state.StatusFailed {
		t.Errorf("recorded run = %+v, summary %+v; want status interrupted, last_backup_status failed", last, f.State)
	}
	if f.State.LastSuccessID != "" {
		t.Errorf("a success is recorded: %+v", f.State)
	}
	entries, err := archive.List(filepath.Join(p.Dir, "backups"), p.Name)
	if err != nil || len(entries) != 0 {
		t.Errorf("backups after the interrupted run: %v, %v; want none", entries, err)
	}
	if left, _ := filepath.Glob(filepath.Join(p.Dir, "backups", ".partial-*")); len(left) != 0 {
		t.Errorf("partial backup left behind: %v", left)
	}
}
