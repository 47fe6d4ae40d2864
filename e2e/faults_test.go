package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
)

// The fault-injection suite: whatever happens during a run,
// services end as they began and nothing that looks like a backup is left
// unless it is one.

// --- A command running in the background --------------------------------

// bgCmd is `docker autobackup args...` running in the background, as a
// user's shell would run it without a terminal.
type bgCmd struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr syncBuffer
	done   chan struct{}
	res    Result
	plugin int // PID of the plugin process, once found
}

func startAutobackup(t *testing.T, p *Project, args ...string) *bgCmd {
	t.Helper()
	b := &bgCmd{done: make(chan struct{})}
	b.cmd = exec.Command("docker", append([]string{"autobackup"}, args...)...)
	b.cmd.Dir = p.Dir
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	b.cmd.WaitDelay = 10 * time.Second
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start docker autobackup %v: %v", args, err)
	}
	t.Logf("$ docker autobackup %s &  (pid %d)", strings.Join(args, " "), b.cmd.Process.Pid)
	go func() {
		defer close(b.done)
		err := b.cmd.Wait()
		b.res = Result{Stdout: b.stdout.String(), Stderr: b.stderr.String(), Code: b.cmd.ProcessState.ExitCode()}
		if err != nil && b.res.Code == 0 {
			b.res.Code = -1
		}
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = b.cmd.Process.Kill()
			<-b.done
		}
		if b.plugin > 0 {
			waitGone(t, b.plugin, time.Minute)
		}
	})
	return b
}

// waitStderr waits until the command's stderr holds want.
func (b *bgCmd) waitStderr(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(b.stderr.String(), want) {
		select {
		case <-b.done:
			t.Fatalf("the command ended before printing %q: %v", want, b.res)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on stderr after 2m:\n%s", want, b.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pluginPID returns the plugin process the docker CLI started.
func (b *bgCmd) pluginPID(t *testing.T) int {
	t.Helper()
	if b.plugin > 0 {
		return b.plugin
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// Not the short-lived `docker-autobackup docker-cli-plugin-metadata`
		// the CLI runs first: the plugin proper gets the original arguments.
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(b.cmd.Process.Pid), "-f", "docker-autobackup autobackup ").Output()
		if f := strings.Fields(string(out)); len(f) == 1 {
			b.plugin, _ = strconv.Atoi(f[0])
			return b.plugin
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no docker-autobackup child of docker pid %d", b.cmd.Process.Pid)
	return 0
}

// wait waits for the docker CLI to exit and then for the plugin process
// (which may outlive it) to finish, and returns what the user saw.
func (b *bgCmd) wait(t *testing.T) Result {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(cmdTimeout):
		t.Fatalf("docker autobackup still running after %s", cmdTimeout)
	}
	if b.plugin > 0 {
		waitGone(t, b.plugin, 5*time.Minute)
	}
	t.Logf("background command: %v", b.res)
	return b.res
}

func waitGone(t *testing.T, pid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for syscall.Kill(pid, 0) == nil {
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(st), ") Z ") {
			return // a zombie has finished its work
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d still running after %s", pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --- Shared checks ------------------------------------------------------

// wantNothingLeft checks that no helper container of the project is left,
// and no partial or complete backup (when complete is false).
func wantNothingLeft(t *testing.T, p *Project, complete bool) {
	t.Helper()
	r := Docker(t, "ps", "-aq", "--filter", "label=io.docker-autobackup.helper=true", "--filter", "label=io.docker-autobackup.project="+p.Name)
	if ids := strings.Fields(r.Stdout); r.Code != 0 || len(ids) > 0 {
		t.Errorf("helper containers left: %v (%v)", ids, r)
	}
	dir := filepath.Join(p.Dir, "backups")
	if left, _ := filepath.Glob(filepath.Join(dir, ".partial-*")); len(left) > 0 {
		t.Errorf("partial backups left: %v", left)
	}
	if !complete {
		if entries, err := archive.ListAll(dir); err != nil || len(entries) > 0 {
			t.Errorf("backups left that look complete: %v (%v)", entries, err)
		}
	}
}

// wantStoppedOnceAndBack checks, per container, that every stop was
// followed by a start, and that none was stopped twice in a row.
func wantStoppedOnceAndBack(t *testing.T, evs []Event) {
	t.Helper()
	last := map[string]string{}
	for _, e := range evs {
		if e.Type != "container" || (e.Action != "stop" && e.Action != "start") || e.Service == "" {
			continue
		}
		if e.Action == "stop" && last[e.ID] == "stop" {
			t.Errorf("%s stopped twice without a start in between: %v", e.Service, Lifecycle(evs))
		}
		last[e.ID] = e.Action
	}
	for id, a := range last {
		if a == "stop" {
			t.Errorf("container %s was stopped and not started again: %v", id[:12], Lifecycle(evs))
		}
	}
}

func lastBackupStatus(t *testing.T, p *Project) (status, errMsg string) {
	t.Helper()
	s := readState(t, p)
	if len(s.Backups) == 0 {
		t.Fatalf("autobackup.history.toml records no run")
	}
	b := s.Backups[len(s.Backups)-1]
	return b.Status, b.Error
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// --- 1. Interrupts --------------------------------------------------------

// TestFaultInterrupt sends SIGINT or SIGTERM (and sometimes a second one) at
// each phase of a run, to the docker CLI (no terminal: the CLI closes the
// plugin's socket) or to the plugin itself (what a terminal's Ctrl-C does).
func TestFaultInterrupt(t *testing.T) {
	type target int
	const (
		toCLI target = iota
		toPlugin
	)
	for _, c := range []struct {
		name     string
		snapshot string // snapshot setting
		bigData  bool   // fill the volume so that the copy takes seconds
		trigger  string // stderr line that opens the window
		delay    time.Duration
		sig      syscall.Signal
		to       target
		second   bool
		stopped  bool // whether anything was stopped when the signal came
	}{
		{"stop/SIGINT-cli", "stream", false, "stopping app", 300 * time.Millisecond, syscall.SIGINT, toCLI, false, true},
		{"stop/SIGTERM-plugin-twice", "stream", false, "stopping app", 300 * time.Millisecond, syscall.SIGTERM, toPlugin, true, true},
		{"snapshot/SIGTERM-cli-twice", "stream", true, "copying", 300 * time.Millisecond, syscall.SIGTERM, toCLI, true, true},
		{"snapshot/SIGINT-plugin", "stream", true, "copying", 300 * time.Millisecond, syscall.SIGINT, toPlugin, false, true},
		{"staged-precopy/SIGINT-cli", "staged", true, "pre-copy", 300 * time.Millisecond, syscall.SIGINT, toCLI, false, false},
		{"start/SIGINT-cli-twice", "stream", false, "starting db", 0, syscall.SIGINT, toCLI, true, true},
		{"start/SIGTERM-plugin", "stream", false, "starting db", 0, syscall.SIGTERM, toPlugin, false, true},
		{"health/SIGTERM-cli", "stream", false, "started  app", 300 * time.Millisecond, syscall.SIGTERM, toCLI, false, true},
		{"health/SIGINT-plugin-twice", "stream", false, "started  app", 300 * time.Millisecond, syscall.SIGINT, toPlugin, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := NewProject(t)
			writeFile(t, filepath.Join(p.Dir, "autobackup.toml"), "[settings]\nsnapshot = \""+c.snapshot+"\"\n")
			p.Compose(t, "up", "-d", "--wait")
			if c.bigData {
				p.Compose(t, "exec", "-T", "db", "sh", "-c", "dd if=/dev/urandom of=/data/big bs=1M count=300 2>/dev/null; echo small > /data/small")
			}
			ev := p.StartEvents(t)
			b := startAutobackup(t, p, "run")
			plugin := b.pluginPID(t)
			b.waitStderr(t, c.trigger)
			time.Sleep(c.delay)
			pid := b.cmd.Process.Pid
			if c.to == toPlugin {
				pid = plugin
			}
			t.Logf("sending %v to pid %d", c.sig, pid)
			if err := syscall.Kill(pid, c.sig); err != nil {
				t.Fatal(err)
			}
			if c.second {
				time.Sleep(300 * time.Millisecond)
				_ = syscall.Kill(pid, c.sig) // the process may be gone already
			}
			r := b.wait(t)
			evs := ev.Stop()
			t.Logf("lifecycle: %v", Lifecycle(evs))

			// The shell's code for the signal: 130 for SIGINT, 143 for
			// SIGTERM (3 would name services not back). A signal to the
			// docker CLI reaches the plugin as a closed connection, which
			// does not say which signal it was: 130 or 143 then.
			want := map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143}[c.sig]
			if c.to == toCLI && (r.Code == 130 || r.Code == 143) {
				want = r.Code
			}
			if r.Code != want {
				t.Errorf("exit %d, want %d (interrupted, services back): %v", r.Code, want, r)
			}
			lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
			if last := lines[len(lines)-1]; !strings.Contains(last, "interrupted") || !strings.Contains(last, "running again") || strings.Contains(last, "context canceled") {
				t.Errorf("the last line does not say plainly what was interrupted and that services are back: %q", last)
			}
			if strings.TrimSpace(r.Stdout) != "" {
				t.Errorf("an interrupted run printed %q on stdout (a backup ID?)", r.Stdout)
			}
			if !strings.Contains(r.Stderr, "interrupted") && !strings.Contains(r.Stderr, "canceled") {
				t.Errorf("stderr does not say the run was interrupted:\n%s", r.Stderr)
			}
			wantAllUp(t, p, "db", "app")
			wantStoppedOnceAndBack(t, evs)
			if _, ok := Find(evs, "app", "stop"); ok != c.stopped {
				t.Errorf("app stopped: %v, want %v", ok, c.stopped)
			}
			wantNothingLeft(t, p, false)
			if st, msg := lastBackupStatus(t, p); st != "interrupted" {
				t.Errorf("recorded status %q (%s), want interrupted", st, msg)
			}

			// The next run works and leaves one complete backup.
			if !c.bigData {
				mustRun(t, p)
				wantNothingLeft(t, p, true)
			}
		})
	}
}

// --- 2. Concurrency ---------------------------------------------------------

func TestFaultConcurrent(t *testing.T) {
	t.Run("second-run-fails-at-once", func(t *testing.T) {
		p := NewProject(t)
		p.Compose(t, "up", "-d", "--wait")
		ev := p.StartEvents(t)
		first := startAutobackup(t, p, "run")
		holder := first.pluginPID(t)
		first.waitStderr(t, "stopping db")
		begin := time.Now()
		second := p.Autobackup(t, "run")
		if second.Code != 1 {
			t.Errorf("second run: exit %d, want 1: %v", second.Code, second)
		}
		if took := time.Since(begin); took > 10*time.Second {
			t.Errorf("second run took %s to fail, want at once", took)
		}
		if !strings.Contains(second.Stderr, fmt.Sprintf("pid %d", holder)) || !strings.Contains(second.Stderr, "started ") || !strings.Contains(second.Stderr, "--lock-timeout") {
			t.Errorf("second run's message does not name the holder (pid %d), its start time and the way out:\n%s", holder, second.Stderr)
		}
		if r := first.wait(t); r.Code != 0 {
			t.Errorf("first run: %v", r)
		}
		evs := ev.Stop()
		if n := len(Lifecycle(evs, "stop")); n != 1 {
			t.Errorf("db stopped %d times, want 1: %v", n, Lifecycle(evs))
		}
		wantStoppedOnceAndBack(t, evs)
		wantAllUp(t, p, "db")
		s := readState(t, p)
		if len(s.Backups) != 1 || s.Backups[0].Status != "success" {
			t.Errorf("state records %+v, want only the first run (the refused one changed nothing)", s.Backups)
		}
	})

	t.Run("second-run-waits", func(t *testing.T) {
		p := NewProject(t)
		p.Compose(t, "up", "-d", "--wait")
		ev := p.StartEvents(t)
		first := startAutobackup(t, p, "run")
		first.waitStderr(t, "stopping db")
		second := p.Autobackup(t, "run", "--lock-timeout", "2m")
		if second.Code != 0 {
			t.Errorf("second run with --lock-timeout 2m: %v", second)
		}
		if r := first.wait(t); r.Code != 0 {
			t.Errorf("first run: %v", r)
		}
		evs := ev.Stop()
		if got := Lifecycle(evs, "stop", "start"); strings.Join(got, ",") != "db stop,db start,db stop,db start" {
			t.Errorf("lifecycle %v, want two runs one after the other", got)
		}
		wantAllUp(t, p, "db")
		if entries, _ := archive.List(filepath.Join(p.Dir, "backups"), p.Name); len(entries) != 2 {
			t.Errorf("%d backups, want 2", len(entries))
		}
	})

	t.Run("restore-during-run", func(t *testing.T) {
		p := NewProject(t)
		p.Compose(t, "up", "-d", "--wait")
		id := mustRun(t, p)
		ev := p.StartEvents(t)
		run := startAutobackup(t, p, "run")
		holder := run.pluginPID(t)
		run.waitStderr(t, "stopping db")
		r := p.Autobackup(t, "restore", id, "--yes")
		if r.Code != 1 || !strings.Contains(r.Stderr, fmt.Sprintf("pid %d", holder)) {
			t.Errorf("restore during a run: exit %d, want 1 naming pid %d: %v", r.Code, holder, r)
		}
		if r := run.wait(t); r.Code != 0 {
			t.Errorf("run: %v", r)
		}
		// And the other way round: a run during a restore.
		restore := startAutobackup(t, p, "restore", id, "--yes")
		restore.waitStderr(t, "stopping db")
		if r := p.Autobackup(t, "run"); r.Code != 1 || !strings.Contains(r.Stderr, "restore") {
			t.Errorf("run during a restore: exit %d, want 1 naming the restore: %v", r.Code, r)
		}
		if r := restore.wait(t); r.Code != 0 {
			t.Errorf("restore: %v", r)
		}
		evs := ev.Stop()
		if n := len(Lifecycle(evs, "stop")); n != 2 {
			t.Errorf("db stopped %d times, want 2 (one run, one restore): %v", n, Lifecycle(evs))
		}
		wantStoppedOnceAndBack(t, evs)
		wantAllUp(t, p, "db")
	})

	t.Run("two-projects", func(t *testing.T) {
		a, b := NewProject(t), NewProject(t)
		a.Compose(t, "up", "-d", "--wait")
		b.Compose(t, "up", "-d", "--wait")
		ra, rb := startAutobackup(t, a, "run"), startAutobackup(t, b, "run")
		for _, r := range []Result{ra.wait(t), rb.wait(t)} {
			if r.Code != 0 {
				t.Errorf("parallel run of another project: %v", r)
			}
		}
		wantAllUp(t, a, "db")
		wantAllUp(t, b, "db")
	})

	t.Run("stale-lock", func(t *testing.T) {
		p := NewProject(t)
		p.Compose(t, "up", "-d", "--wait")
		p.Compose(t, "exec", "-T", "db", "touch", "/data/slow-pre")
		killed := startAutobackup(t, p, "run")
		pid := killed.pluginPID(t)
		killed.waitStderr(t, "hook     db: pre")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed.wait(t)
		holder, _ := os.ReadFile(filepath.Join(p.Dir, ".autobackup.lock"))
		if !strings.Contains(string(holder), strconv.Itoa(pid)) {
			t.Logf("lock file after the kill: %q", holder)
		}
		p.Compose(t, "exec", "-T", "db", "rm", "/data/slow-pre")
		mustRun(t, p) // the kernel released the dead holder's lock
		wantAllUp(t, p, "db")
		wantNothingLeft(t, p, true)
	})
}

// --- 3. Engine faults -------------------------------------------------------

func TestFaultEngine(t *testing.T) {
	t.Run("container-removed", func(t *testing.T) {
		p := NewProject(t)
		writeFile(t, filepath.Join(p.Dir, "autobackup.toml"), "[settings]\nsnapshot = \"stream\"\n")
		p.Compose(t, "up", "-d", "--wait")
		p.Compose(t, "exec", "-T", "db", "sh", "-c", "dd if=/dev/urandom of=/data/big bs=1M count=300 2>/dev/null")
		db := p.containerID(t, "db")
		b := startAutobackup(t, p, "run")
		b.waitStderr(t, "copying")
		// (Removing the helper instead does not break the copy: the engine
		// holds the removal until the archive stream ends.)
		if r := Docker(t, "rm", "-f", db); r.Code != 0 {
			t.Fatalf("remove db behind the run's back: %v", r)
		}
		res := b.wait(t)
		if res.Code != 3 || !strings.Contains(res.Stderr, "SERVICES ARE NOT BACK UP: db") || !strings.Contains(res.Stderr, "No such container") {
			t.Errorf("exit %d, want 3 naming db and why: %v", res.Code, res)
		}
		wantNothingLeft(t, p, true)
		if st, _ := lastBackupStatus(t, p); st != "failed" {
			t.Errorf("recorded %q, want failed", st)
		}
	})

	t.Run("slow-stop", func(t *testing.T) {
		p := NewProject(t)
		p.Compose(t, "up", "-d", "--wait")
		r := p.Autobackup(t, "run")
		if r.Code != 0 {
			t.Fatalf("run: %v", r)
		}
		if !strings.Contains(r.Stderr, "WARNING") || !strings.Contains(r.Stderr, "did not stop within 1s") {
			t.Errorf("no warning about the kill:\n%s", r.Stderr)
		}
		wantAllUp(t, p, "stubborn")
	})

	t.Run("unhealthy-after-restart", func(t *testing.T) {
		p := NewProject(t)
		p.Compose(t, "up", "-d", "--wait")
		r := p.Autobackup(t, "run")
		if r.Code != 3 {
			t.Fatalf("exit %d, want 3: %v", r.Code, r)
		}
		if !strings.Contains(r.Stderr, "SERVICES ARE NOT BACK UP: web") || !strings.Contains(r.Stderr, "unhealthy") {
			t.Errorf("the message does not name web as unhealthy:\n%s", r.Stderr)
		}
		// The copy is complete and kept: its ID is printed.
		id := strings.TrimSpace(r.Stdout)
		if !idPattern.MatchString(id) {
			t.Errorf("stdout %q, want the ID of the complete copy", r.Stdout)
		} else if _, _, err := archive.Open(filepath.Join(p.Dir, "backups"), p.Name, id); err != nil {
			t.Errorf("the complete copy is gone: %v", err)
		}
		if st, _ := lastBackupStatus(t, p); st != "failed" {
			t.Errorf("recorded %q, want failed", st)
		}
		wantNothingLeft(t, p, true)
	})

	t.Run("dependency-exits", func(t *testing.T) {
		p := NewProject(t)
		p.Compose(t, "up", "-d", "--wait")
		r := p.Autobackup(t, "run")
		if r.Code != 3 {
			t.Fatalf("exit %d, want 3: %v", r.Code, r)
		}
		if !strings.Contains(r.Stderr, "SERVICES ARE NOT BACK UP: app, db") || !strings.Contains(r.Stderr, "exited with code 3") ||
			!strings.Contains(r.Stderr, "dependency db") {
			t.Errorf("the message does not say db exited and app was not started for it:\n%s", r.Stderr)
		}
		if st, _ := p.ContainerState(t, "app"); st != "exited" {
			t.Errorf("app is %s; want it left stopped (its dependency is down)", st)
		}
	})

	t.Run("dependency-not-completed", func(t *testing.T) {
		p := NewProject(t)
		p.Compose(t, "up", "-d", "--wait")
		// init's last run now fails.
		p.Compose(t, "exec", "-T", "app", "sh", "-c", "echo 5 > /data/code")
		Docker(t, "start", "-a", p.containerID(t, "init"))
		r := p.Autobackup(t, "run")
		if r.Code != 3 {
			t.Fatalf("exit %d, want 3: %v", r.Code, r)
		}
		if !strings.Contains(r.Stderr, "SERVICES ARE NOT BACK UP: app") || !strings.Contains(r.Stderr, "dependency init") || !strings.Contains(r.Stderr, "code 5") {
			t.Errorf("the message does not say app waits for init, which exited with code 5:\n%s", r.Stderr)
		}
	})
}

// --- 4. Disk full, unwritable directory --------------------------------------

func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
}

func TestFaultDiskFull(t *testing.T) {
	t.Run("mid-write", func(t *testing.T) {
		p := NewProject(t)
		mountTmpfs(t, filepath.Join(p.Dir, "small"), "2m")
		writeFile(t, filepath.Join(p.Dir, "autobackup.toml"), "[settings]\ndirectory = \"./small\"\nsnapshot = \"stream\"\n")
		p.Compose(t, "up", "-d", "--wait")
		p.Compose(t, "exec", "-T", "db", "sh", "-c", "dd if=/dev/urandom of=/data/big bs=1M count=8 2>/dev/null")
		ev := p.StartEvents(t)
		r := p.Autobackup(t, "run")
		evs := ev.Stop()
		if r.Code != 1 || !strings.Contains(r.Stderr, "no space left on device") {
			t.Errorf("exit %d, want 1 saying the disk is full: %v", r.Code, r)
		}
		if !Before(evs, "db", "stop", "db", "start") {
			t.Errorf("db not stopped and restarted: %v", Lifecycle(evs))
		}
		wantAllUp(t, p, "db")
		left, _ := os.ReadDir(filepath.Join(p.Dir, "small"))
		if len(left) > 0 {
			t.Errorf("left in the full backup directory: %v", left)
		}
		if st, _ := lastBackupStatus(t, p); st != "failed" {
			t.Errorf("recorded %q, want failed", st)
		}
	})

	t.Run("preflight", func(t *testing.T) {
		p := NewProject(t)
		mountTmpfs(t, filepath.Join(p.Dir, "small"), "4m")
		writeFile(t, filepath.Join(p.Dir, "autobackup.toml"), "[settings]\ndirectory = \"./small\"\nsnapshot = \"stream\"\n")
		p.Compose(t, "up", "-d", "--wait")
		p.Compose(t, "exec", "-T", "db", "sh", "-c", "dd if=/dev/urandom of=/data/big bs=1k count=1500 2>/dev/null")
		mustRun(t, p) // ~1.5 MB of 4 MB
		mustRun(t, p) // ~3 MB of 4 MB: less than the last backup's size is free now
		ev := p.StartEvents(t)
		r := p.Autobackup(t, "run")
		evs := ev.Stop()
		if r.Code != 1 || !strings.Contains(r.Stderr, "not enough free space") || !strings.Contains(r.Stderr, "nothing was stopped") {
			t.Errorf("exit %d, want 1 refusing for lack of space before stopping: %v", r.Code, r)
		}
		if got := Lifecycle(evs); len(got) > 0 {
			t.Errorf("containers touched: %v", got)
		}
		wantAllUp(t, p, "db")
	})

	t.Run("unwritable", func(t *testing.T) {
		p := NewProject(t)
		writeFile(t, filepath.Join(p.Dir, "afile"), "a regular file\n")
		writeFile(t, filepath.Join(p.Dir, "autobackup.toml"), "[settings]\ndirectory = \"./afile/backups\"\n")
		p.Compose(t, "up", "-d", "--wait")
		ev := p.StartEvents(t)
		r := p.Autobackup(t, "run")
		evs := ev.Stop()
		if r.Code != 1 || !strings.Contains(r.Stderr, "afile") {
			t.Errorf("exit %d, want 1 naming the directory: %v", r.Code, r)
		}
		if got := Lifecycle(evs); len(got) > 0 {
			t.Errorf("containers touched: %v", got)
		}
		wantAllUp(t, p, "db")
	})
}

// --- 6. Secrets ---------------------------------------------------------------

func TestFaultSecrets(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	id := mustRun(t, p)
	if r := p.Autobackup(t, "restore", id, "--yes"); r.Code != 0 {
		t.Fatalf("restore: %v", r)
	}
	m, _, err := archive.Open(filepath.Join(p.Dir, "backups"), p.Name, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(readState(t, p).Restores) != 1 {
		t.Errorf("restore not recorded")
	}
	for name, want := range map[string]os.FileMode{
		"backups":                          0o700,
		"backups/" + id:                    0o700,
		"backups/" + id + "/manifest.json": 0o600,
		"backups/" + id + "/" + m.Volumes[0].Archive: 0o600,
		"autobackup.history.toml":                    0o600, // written by the restore record
		".autobackup.lock":                           0o600,
	} {
		fi, err := os.Stat(filepath.Join(p.Dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}

	// A failing hook's output: only a short tail reaches the user and the
	// state file.
	p.Compose(t, "exec", "-T", "db", "touch", "/data/fail-hook")
	ev := p.StartEvents(t)
	r := p.Autobackup(t, "run")
	evs := ev.Stop()
	if r.Code != 1 {
		t.Errorf("run with a failing pre hook: %v", r)
	}
	if got := Lifecycle(evs); len(got) > 0 {
		t.Errorf("a failing pre hook stopped something: %v", got)
	}
	st, msg := lastBackupStatus(t, p)
	if st != "failed" || !strings.Contains(msg, "SECRET-TAIL") {
		t.Errorf("recorded %q: %q; want failed with the hook's tail", st, msg)
	}
	data, _ := os.ReadFile(filepath.Join(p.Dir, "autobackup.history.toml"))
	if strings.Contains(string(data), "SECRET-HEAD") || len(msg) > 600 {
		t.Errorf("autobackup.history.toml holds more than a short tail of the hook output (%d bytes)", len(msg))
	}
	if strings.Contains(r.Stderr, "SECRET-HEAD") {
		t.Errorf("stderr shows the whole hook output")
	}
}

// --- 7. Never start what was stopped ----------------------------------------

func TestFaultNeverStart(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait", "--scale", "worker=0")
	p.Compose(t, "stop", "api")
	apiID := p.containerID(t, "api")
	oneoff := strings.TrimSpace(p.Compose(t, "run", "-d", "--no-deps", "api", "sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"))
	t.Cleanup(func() { Docker(t, "rm", "-f", oneoff) })

	check := func(what string, evs []Event) {
		t.Helper()
		for _, e := range evs {
			if e.Type != "container" {
				continue
			}
			switch {
			case e.Service == "worker":
				t.Errorf("%s: worker (scaled to 0) got %q", what, e.Action)
			case e.ID == apiID && (e.Action == "start" || e.Action == "stop" || e.Action == "create"):
				t.Errorf("%s: api (stopped before) got %q", what, e.Action)
			case strings.HasPrefix(e.ID, oneoff) || strings.HasPrefix(oneoff, e.ID):
				if e.Action == "stop" || e.Action == "start" || e.Action == "kill" || e.Action == "die" {
					t.Errorf("%s: the one-off container got %q", what, e.Action)
				}
			}
		}
		if r := Docker(t, "ps", "-aq", "--filter", "label="+projectLabel+"="+p.Name, "--filter", "label=com.docker.compose.service=worker"); strings.TrimSpace(r.Stdout) != "" {
			t.Errorf("%s: worker has containers: %q", what, r.Stdout)
		}
		if r := Docker(t, "inspect", "--format", "{{.State.Status}}", apiID); strings.TrimSpace(r.Stdout) != "exited" {
			t.Errorf("%s: api is %q, want exited", what, r.Stdout)
		}
		if r := Docker(t, "inspect", "--format", "{{.State.Status}}", oneoff); strings.TrimSpace(r.Stdout) != "running" {
			t.Errorf("%s: one-off container is %q, want running", what, r.Stdout)
		}
		wantAllUp(t, p, "db")
	}

	ev := p.StartEvents(t)
	id := mustRun(t, p)
	evs := ev.Stop()
	if !Before(evs, "db", "stop", "db", "start") {
		t.Errorf("db not backed up: %v", Lifecycle(evs))
	}
	check("run", evs)

	ev = p.StartEvents(t)
	if r := p.Autobackup(t, "restore", id, "--yes"); r.Code != 0 {
		t.Fatalf("restore: %v", r)
	}
	evs = ev.Stop()
	check("restore", evs)
}
