package archive

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/docker-autobackup/docker-autobackup/internal/atomicfile"
)

// TestSharedFolderScoping: two projects in one folder see only their own
// backups; Open of the other's is a *ForeignError naming it.
func TestSharedFolderScoping(t *testing.T) {
	dir := t.TempDir()
	data := map[string][]byte{"v": sampleTar(t)}
	a1 := writeProjectBackup(t, dir, "alpha", "20261125-100000-aaaa", t0, data)
	b1 := writeProjectBackup(t, dir, "beta", "20261125-110000-bbbb", t0.Add(time.Hour), data)
	a2 := writeProjectBackup(t, dir, "alpha", "20261125-120000-aaab", t0.Add(2*time.Hour), data)
	b2 := writeProjectBackup(t, dir, "beta", "20261125-130000-bbbc", t0.Add(3*time.Hour), data)

	ids := func(es []Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range []struct {
		project string
		want    []string
	}{
		{"alpha", []string{a2.ID, a1.ID}},
		{"beta", []string{b2.ID, b1.ID}},
		{"gamma", nil},
	} {
		got, err := List(dir, tc.project)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), tc.want) {
			t.Errorf("List(%s) = %v, want %v", tc.project, ids(got), tc.want)
		}
	}
	all, err := ListAll(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(all), []string{b2.ID, a2.ID, b1.ID, a1.ID}; !slices.Equal(got, want) {
		t.Errorf("ListAll = %v, want %v", got, want)
	}
	if got, err := Projects(dir); err != nil || !slices.Equal(got, []string{"alpha", "beta"}) {
		t.Errorf("Projects = %v, %v", got, err)
	}

	// latest is per project, even though beta's is newer overall.
	m, _, err := Open(dir, "alpha", Latest)
	if err != nil || m.ID != a2.ID {
		t.Errorf("Open(alpha, latest) = %v, %v; want %s", m, err, a2.ID)
	}
	if _, _, err := Open(dir, "gamma", Latest); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(gamma, latest) = %v, want ErrNotFound", err)
	}
	_, _, err = Open(dir, "alpha", b1.ID)
	var fe *ForeignError
	if !errors.As(err, &fe) || fe.Project != "beta" || fe.Want != "alpha" || fe.ID != b1.ID {
		t.Fatalf("Open(alpha, %s) = %v, want a ForeignError naming beta", b1.ID, err)
	}
	if !strings.Contains(err.Error(), `"beta"`) {
		t.Errorf("error %q does not name the owning project", err)
	}

	// A broken manifest whose project can still be read stays with its
	// project, and is refused to the others as foreign.
	if err := os.WriteFile(filepath.Join(dir, b1.ID, ManifestName), []byte(`{"format_version": 1, "project": "beta", "id": 3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := List(dir, "beta")
	if len(got) != 2 || got[1].Err == nil || got[1].Project != "beta" {
		t.Errorf("List(beta) with a broken manifest = %+v", got)
	}
	if got, _ := List(dir, "alpha"); len(got) != 2 {
		t.Errorf("List(alpha) = %v, want alpha's two", ids(got))
	}
	if _, _, err := Open(dir, "alpha", b1.ID); !errors.As(err, &fe) {
		t.Errorf("Open(alpha, broken beta backup) = %v, want a ForeignError", err)
	}
}

// TestCleanPartialsOwners: a partial backup is removed only when no live
// process owns it, whatever its age; ownerless ones only by age.
func TestCleanPartialsOwners(t *testing.T) {
	dir := t.TempDir()
	if got, err := CleanPartials(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("CleanPartials(missing) = %v, %v", got, err)
	}
	complete := NewID(t0)
	writeBackup(t, dir, complete, t0, map[string][]byte{"shop_data": sampleTar(t)})

	ancient := time.Now().Add(-3 * LeftoverAge)
	age := func(path string, mtime time.Time) {
		t.Helper()
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	// A live run of another project, even with old files: kept.
	live, err := Begin(dir, "20261125-000000-0001", "beta")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	if err := os.WriteFile(filepath.Join(live.Path(), "x.tar.zst"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	age(filepath.Join(live.Path(), "x.tar.zst"), ancient)
	age(live.Path(), ancient)

	// A run whose process died: its owner file is there, the lock free.
	dead, err := Begin(dir, "20261125-000000-0002", "shop")
	if err != nil {
		t.Fatal(err)
	}
	dead.owner.Unlock() // what the kernel does when the process exits
	deadPath := dead.Path()

	// An owner file of a process that is gone, nobody holding its lock.
	nolock := filepath.Join(dir, ".partial-20261125-000000-0003")
	if err := os.Mkdir(nolock, 0o700); err != nil {
		t.Fatal(err)
	}
	writeOwner(t, nolock, Owner{Project: "shop", Host: Hostname(), PID: deadPID(t)})

	// Another host's partial backup: its lock proves nothing here, so
	// it stays until it is old.
	remoteYoung := filepath.Join(dir, ".partial-20261125-000000-0004")
	remoteOld := filepath.Join(dir, ".partial-20261125-000000-0005")
	for _, p := range []string{remoteYoung, remoteOld} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		writeOwner(t, p, Owner{Project: "shop", Host: "elsewhere-" + Hostname(), PID: 1})
	}
	age(remoteOld, ancient)

	// Partial backups of an older version, without owner files.
	legacyYoung := filepath.Join(dir, ".partial-20261125-000000-0006")
	legacyOld := filepath.Join(dir, ".partial-20261125-000000-0007")
	for _, p := range []string{legacyYoung, legacyOld} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	age(legacyOld, ancient)

	// Temporary files: young ones may be being written.
	oldTemp := filepath.Join(dir, atomicfile.TempPrefix+"x")
	youngTemp := filepath.Join(dir, atomicfile.TempPrefix+"y")
	innerTemp := filepath.Join(dir, complete, atomicfile.TempPrefix+"manifest.json-1")
	for _, p := range []string{oldTemp, youngTemp, innerTemp} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	age(oldTemp, time.Now().Add(-2*tempAge))
	age(innerTemp, time.Now().Add(-2*tempAge))

	got, err := CleanPartials(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{deadPath, nolock, remoteOld, legacyOld, oldTemp, innerTemp}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("removed\n  %q\nwant\n  %q", got, want)
	}
	for _, p := range []string{live.Path(), ownerPath(live.Path()), remoteYoung, legacyYoung, youngTemp, filepath.Join(dir, complete, ManifestName)} {
		if !exists(t, p) {
			t.Errorf("%s was removed", p)
		}
	}
	for _, p := range []string{ownerPath(deadPath), ownerPath(nolock), ownerPath(remoteOld)} {
		if exists(t, p) {
			t.Errorf("owner file %s is still there", p)
		}
	}

	// The live run still commits.
	m := &Manifest{ID: live.ID(), Project: "beta", Mode: ModeStream, Started: t0, Finished: t0}
	if err := live.Commit(m); err != nil {
		t.Fatalf("commit of the live run after a clean: %v", err)
	}
	if exists(t, ownerPath(live.Path())) {
		t.Error("owner file left after commit")
	}
}

// TestConcurrentBeginsInOneFolder: runs of several projects writing into
// one folder while others clean it all commit.
func TestConcurrentBeginsInOneFolder(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	errs := make(chan error, 2*n)
	for i := range n {
		go func() {
			project := []string{"alpha", "beta"}[i%2]
			id := NewID(t0.Add(time.Duration(i) * time.Second))
			p, err := Begin(dir, id, project)
			if err != nil {
				errs <- err
				return
			}
			defer p.Abort()
			for range 3 {
				if _, err := CleanPartials(dir); err != nil {
					errs <- err
					return
				}
			}
			errs <- p.Commit(&Manifest{ID: id, Project: project, Mode: ModeStream, Started: t0, Finished: t0})
		}()
		go func() {
			_, err := CleanPartials(dir)
			errs <- err
		}()
	}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	all, _ := ListAll(dir)
	if len(all) != n {
		t.Errorf("%d backups committed, want %d", len(all), n)
	}
}

func TestOwnerLockIsHeld(t *testing.T) {
	dir := t.TempDir()
	p, err := Begin(dir, NewID(t0), "shop")
	if err != nil {
		t.Fatal(err)
	}
	fl := flock.New(ownerPath(p.Path()), flock.SetFlag(os.O_RDWR))
	if ok, err := fl.TryLock(); err != nil || ok {
		t.Fatalf("owner lock of a pending backup could be taken: %v, %v", ok, err)
	}
	var o Owner
	data, _ := os.ReadFile(ownerPath(p.Path()))
	if err := json.Unmarshal(data, &o); err != nil || o.Project != "shop" || o.PID != os.Getpid() || o.Host != Hostname() {
		t.Errorf("owner record %s: %v", data, err)
	}
	if err := p.Abort(); err != nil {
		t.Fatal(err)
	}
	if exists(t, ownerPath(p.Path())) {
		t.Error("owner file left after abort")
	}
}

func TestProcStart(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no procfs")
	}
	if procStart(os.Getpid()) == 0 {
		t.Error("procStart(self) = 0")
	}
	if !alive(os.Getpid(), procStart(os.Getpid())) {
		t.Error("this process is not alive")
	}
	if alive(os.Getpid(), procStart(os.Getpid())+1) {
		t.Error("a reused PID (other start time) counts as alive")
	}
}

func writeOwner(t *testing.T, partial string, o Owner) {
	t.Helper()
	data, _ := json.Marshal(o)
	if err := os.WriteFile(ownerPath(partial), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// deadPID returns a PID no process has.
func deadPID(t *testing.T) int {
	t.Helper()
	for pid := 4_000_000; pid > 1; pid -= 7919 {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); errors.Is(err, os.ErrNotExist) {
			return pid
		}
	}
	t.Fatal("no free PID found")
	return 0
}
