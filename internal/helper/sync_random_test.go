package helper

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSyncRandomChanges is the equivalence property of the staged snapshot:
// whatever happens to the source during the pre-copy (started at T0) and
// between it and the delta-sync (run with since = T0), the delta-sync leaves
// a mirror equal to the source. Odd seeds also change the tree while the
// pre-copy runs.
func TestSyncRandomChanges(t *testing.T) {
	seeds := 50
	if testing.Short() {
		seeds = 10
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			r := &randTree{t: t, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
			e := newSyncEnv(t)
			r.root = e.src
			for range 40 {
				r.create()
			}
			// A first full sync and some churn, so that the pre-copy
			// below is itself incremental, as in production.
			e.sync(t, SyncOptions{})
			for range 10 {
				r.step()
			}

			var hook func(string)
			if seed%2 == 1 {
				var mu sync.Mutex
				left := 8
				hook = func(string) {
					mu.Lock()
					defer mu.Unlock()
					if left > 0 && r.rng.IntN(3) == 0 {
						left--
						r.step()
					}
				}
			}
			t0 := time.Now()
			e.sync(t, SyncOptions{afterCopy: hook})
			for range 1 + r.rng.IntN(25) {
				r.step()
			}
			e.sync(t, SyncOptions{Since: t0})
			compareTrees(t, e.src, e.dst)
		})
	}
}

// randTree applies random changes to the tree at root. It only uses the
// file system as its state, so it can run while Sync walks the tree.
type randTree struct {
	t    *testing.T
	rng  *rand.Rand
	root string
}

var randNames = []string{"a", "b", "c d", "é", "x\ny", "data.db", "wal", ".h", "z"}

type randEntry struct {
	rel string
	typ uint32
}

func (r *randTree) entries() []randEntry {
	var out []randEntry
	var walk func(rel string)
	walk = func(rel string) {
		ents, err := os.ReadDir(filepath.Join(r.root, rel))
		if err != nil {
			return // changed under us
		}
		for _, ent := range ents {
			crel := filepath.Join(rel, ent.Name())
			var st unix.Stat_t
			if unix.Lstat(filepath.Join(r.root, crel), &st) != nil {
				continue
			}
			out = append(out, randEntry{crel, st.Mode & unix.S_IFMT})
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				walk(crel)
			}
		}
	}
	walk("")
	return out
}

func (r *randTree) pick(typ uint32) (string, bool) {
	var c []string
	for _, e := range r.entries() {
		if typ == 0 || e.typ == typ {
			c = append(c, e.rel)
		}
	}
	if len(c) == 0 {
		return "", false
	}
	return c[r.rng.IntN(len(c))], true
}

// newPath is a fresh name in a random existing directory, at most 3 deep.
func (r *randTree) newPath() string {
	dir := ""
	if d, ok := r.pick(unix.S_IFDIR); ok && strings.Count(d, "/") < 3 && r.rng.IntN(3) > 0 {
		dir = d
	}
	for {
		p := filepath.Join(dir, randNames[r.rng.IntN(len(randNames))]+fmt.Sprint(r.rng.IntN(4)))
		if _, err := os.Lstat(filepath.Join(r.root, p)); os.IsNotExist(err) {
			return p
		}
		if r.rng.IntN(4) == 0 {
			return p // sometimes reuse a name: replace whatever is there
		}
	}
}

func (r *randTree) data() []byte {
	n := r.rng.IntN(5000)
	if r.rng.IntN(10) == 0 {
		n = 200_000 + r.rng.IntN(300_000)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.rng.UintN(256))
	}
	return b
}

func (r *randTree) abs(rel string) string { return filepath.Join(r.root, rel) }

func (r *randTree) create() {
	p := r.abs(r.newPath())
	os.RemoveAll(p)
	switch r.rng.IntN(6) {
	case 0, 1:
		os.Mkdir(p, 0o755)
	case 2:
		os.Symlink(randNames[r.rng.IntN(len(randNames))], p)
	default:
		os.WriteFile(p, r.data(), 0o644)
	}
}

// step applies one random change. Errors are ignored: with the pre-copy
// walking concurrently, or after earlier random steps, some must fail.
func (r *randTree) step() {
	switch r.rng.IntN(13) {
	case 0:
		r.create()
	case 1: // overwrite
		if p, ok := r.pick(unix.S_IFREG); ok {
			os.WriteFile(r.abs(p), r.data(), 0o644)
		}
	case 2: // append
		if p, ok := r.pick(unix.S_IFREG); ok {
			if f, err := os.OpenFile(r.abs(p), os.O_APPEND|os.O_WRONLY, 0); err == nil {
				f.Write(r.data())
				f.Close()
			}
		}
	case 3: // truncate
		if p, ok := r.pick(unix.S_IFREG); ok {
			if st, err := os.Lstat(r.abs(p)); err == nil && st.Size() > 0 {
				os.Truncate(r.abs(p), r.rng.Int64N(st.Size()))
			}
		}
	case 4: // rename anything, possibly over something
		if p, ok := r.pick(0); ok {
			q := r.newPath()
			if !strings.HasPrefix(q+"/", p+"/") {
				os.Rename(r.abs(p), r.abs(q))
			}
		}
	case 5: // delete anything
		if p, ok := r.pick(0); ok {
			os.RemoveAll(r.abs(p))
		}
	case 6, 7: // same size, same mtime: only ctime moves
		if p, ok := r.pick(unix.S_IFREG); ok {
			r.sameSizeSameMtime(r.abs(p))
		}
	case 8: // symlink retarget
		if p, ok := r.pick(unix.S_IFLNK); ok {
			os.Remove(r.abs(p))
			os.Symlink(randNames[r.rng.IntN(len(randNames))]+"/x", r.abs(p))
		}
	case 9: // hard link
		if p, ok := r.pick(unix.S_IFREG); ok {
			os.Link(r.abs(p), r.abs(r.newPath()))
		}
	case 10: // chmod (directories keep u+rwx so later steps can work)
		if p, ok := r.pick(0); ok {
			var st unix.Stat_t
			if unix.Lstat(r.abs(p), &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFLNK {
				mode := []uint32{0o600, 0o644, 0o755, 0o4755, 0o2750, 0o1777, 0o700}[r.rng.IntN(7)]
				if st.Mode&unix.S_IFMT == unix.S_IFDIR {
					mode |= 0o700
				}
				unix.Chmod(r.abs(p), mode)
			}
		}
	case 11: // utimes only
		if p, ok := r.pick(0); ok {
			ts := unix.NsecToTimespec(time.Now().UnixNano() - r.rng.Int64N(int64(time.Hour)))
			unix.UtimesNanoAt(unix.AT_FDCWD, r.abs(p), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
		}
	case 12: // file <-> directory
		if p, ok := r.pick(0); ok {
			var st unix.Stat_t
			if unix.Lstat(r.abs(p), &st) == nil {
				os.RemoveAll(r.abs(p))
				if st.Mode&unix.S_IFMT == unix.S_IFDIR {
					os.WriteFile(r.abs(p), r.data(), 0o600)
				} else {
					os.Mkdir(r.abs(p), 0o750)
					os.WriteFile(r.abs(p)+"/f", r.data(), 0o600)
				}
			}
		}
	}
}

func (r *randTree) sameSizeSameMtime(path string) {
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil || st.Size == 0 {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) != st.Size {
		return
	}
	b = bytes.Clone(b)
	b[r.rng.IntN(len(b))] ^= 0xff
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	f.WriteAt(b, 0)
	f.Close()
	unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}
