package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"

	"github.com/docker-autobackup/docker-autobackup/internal/atomicfile"
)

// ErrNotFound is returned by Open when the requested backup does not exist.
var ErrNotFound = errors.New("backup not found")

// Latest names the newest backup in Open.
const Latest = "latest"

// partialPrefix starts the name of a backup directory still being written.
const partialPrefix = ".partial-"

// Pending is a backup being built in <dir>/.partial-<id>. It becomes visible
// as <dir>/<id> only through Commit. Its methods are safe for concurrent use.
type Pending struct {
	dir, id, path string
	owner         *flock.Flock // the owner lock, nil where the file system has no flock

	mu       sync.Mutex
	archives map[string]bool   // file names taken by WriteVolume and Direct
	unhashed []string          // archives written by direct writers, not yet hashed
	unsynced []string          // archives written, fsynced by Commit
	sums     map[string]string // archive name -> SHA-256, for direct writers
	hashing  chan struct{}     // closed when the background HashDirect ends; nil if none runs
	hashErr  error
	stopHash atomic.Bool // set by Abort
	done     bool        // committed or aborted
}

// Begin starts a backup of project with the given ID in dir. dir is created
// 0700 if it does not exist (an existing directory keeps its mode); the
// partial directory is created 0700 and must not exist yet. This process
// owns the partial directory until Commit or Abort (see CleanPartials), so
// no other run, of any project, removes it meanwhile. Callers should defer
// Abort, which is a no-op after a successful Commit.
func Begin(dir, id, project string) (*Pending, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("begin backup: invalid backup id %q", id)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create backup directory: %w", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, id)); err == nil {
		return nil, fmt.Errorf("begin backup %s: already exists in %s", id, dir)
	}
	path := filepath.Join(dir, partialPrefix+id)
	owner, err := claim(path, project)
	if err != nil {
		return nil, fmt.Errorf("begin backup %s: %w", id, err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		release(path, owner)
		return nil, fmt.Errorf("begin backup %s: %w", id, err)
	}
	// Mkdir applies the umask, which can only remove bits; make the mode
	// exact anyway, the directory is ours.
	if err := os.Chmod(path, 0o700); err != nil {
		_ = os.Remove(path)
		release(path, owner)
		return nil, fmt.Errorf("begin backup %s: %w", id, err)
	}
	return &Pending{dir: dir, id: id, path: path, owner: owner, archives: map[string]bool{}, sums: map[string]string{}}, nil
}

// ID returns the backup ID.
func (p *Pending) ID() string { return p.id }

// Path returns the partial directory the backup is being written to.
func (p *Pending) Path() string { return p.path }

// Commit validates m, writes it atomically as the manifest into the partial
// directory and renames the directory to <dir>/<id>. If m.FormatVersion or
// m.ID are unset they are filled in. Every archive the manifest names must
// have been written with the size it records. After an error the backup is
// still pending and can be aborted.
//
// Archives written by direct writers get their SHA-256 here (computed by
// HashDirect in the background if it was started, else now) and are
// fsynced.
func (p *Pending) Commit(m *Manifest) error {
	if err := p.hashAll(); err != nil {
		return fmt.Errorf("commit backup %s: %w", p.id, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return fmt.Errorf("commit backup %s: already committed or aborted", p.id)
	}
	for i, v := range m.Volumes {
		if sum, ok := p.sums[v.Archive]; ok && v.SHA256 == "" {
			m.Volumes[i].SHA256 = sum
		}
	}
	if m.FormatVersion == 0 {
		m.FormatVersion = FormatVersion
	}
	if m.ID == "" {
		m.ID = p.id
	}
	if m.ID != p.id {
		return fmt.Errorf("commit backup %s: manifest id is %q", p.id, m.ID)
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("commit backup %s: manifest: %w", p.id, err)
	}
	for _, v := range m.Volumes {
		fi, err := os.Lstat(filepath.Join(p.path, v.Archive))
		if err != nil {
			return fmt.Errorf("commit backup %s: volume %s: %w", p.id, v.Name, err)
		}
		if !fi.Mode().IsRegular() || fi.Size() != v.ArchiveBytes {
			return fmt.Errorf("commit backup %s: volume %s: archive %s has %d bytes, manifest says %d",
				p.id, v.Name, v.Archive, fi.Size(), v.ArchiveBytes)
		}
	}
	if err := p.syncArchives(); err != nil {
		return fmt.Errorf("commit backup %s: %w", p.id, err)
	}
	data, err := marshalManifest(m)
	if err != nil {
		return fmt.Errorf("commit backup %s: encode manifest: %w", p.id, err)
	}
	// WriteFile fsyncs the file and the partial directory, so the archives'
	// names are durable before the directory gets its final name.
	if err := atomicfile.WriteFile(filepath.Join(p.path, ManifestName), data, 0o600); err != nil {
		return fmt.Errorf("commit backup %s: write manifest: %w", p.id, err)
	}
	final := filepath.Join(p.dir, p.id)
	// rename(2) would silently replace an empty directory.
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("commit backup %s: %s already exists", p.id, final)
	}
	if err := os.Rename(p.path, final); err != nil {
		return fmt.Errorf("commit backup %s: %w", p.id, err)
	}
	p.done = true
	release(p.path, p.owner)
	if err := atomicfile.SyncDir(p.dir); err != nil {
		return fmt.Errorf("commit backup %s: %w", p.id, err)
	}
	return nil
}

// Abort removes the partial directory. It is idempotent and does nothing
// after a successful Commit.
func (p *Pending) Abort() error {
	p.stopHash.Store(true)
	p.waitHashing() // not while it reads the files
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil
	}
	if err := os.RemoveAll(p.path); err != nil {
		return fmt.Errorf("abort backup %s: %w", p.id, err)
	}
	p.done = true
	release(p.path, p.owner)
	return nil
}

func isTemp(e fs.DirEntry) bool {
	return strings.HasPrefix(e.Name(), atomicfile.TempPrefix) && e.Type().IsRegular()
}

// newest returns the latest modification time of dir and its direct entries.
func newest(dir string) time.Time {
	var t time.Time
	if fi, err := os.Lstat(dir); err == nil {
		t = fi.ModTime()
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}

// Entry is one complete backup found by List. Err is set when its manifest
// is missing, unreadable or invalid; Manifest is nil then.
type Entry struct {
	ID       string
	Path     string
	Manifest *Manifest
	Err      error
	// Project names the project the backup belongs to: the manifest's, or
	// for a broken manifest whatever project field could still be read
	// from it ("" when none could).
	Project string
}

// Host returns the host the backup was taken on, "" when unknown.
func (e Entry) Host() string {
	if e.Manifest == nil {
		return ""
	}
	return e.Manifest.Host
}

// List returns the complete backups of project in dir, newest first. A
// backup folder may be shared by several projects (and hosts): a backup
// belongs to the project its manifest names, and the others are never
// returned. A broken manifest is listed only when its project field can
// still be read and names project. See ListAll for the ordering.
func List(dir, project string) ([]Entry, error) {
	all, err := ListAll(dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range all {
		if e.Project == project {
			out = append(out, e)
		}
	}
	return out, nil
}

// ListAll returns all complete backups in dir, of every project, newest
// first: by the manifest's Started time, or the time in the ID when there
// is no valid manifest. Only directories named by a valid ID count;
// partial backups are skipped. A missing dir gives an empty list and no
// error.
func ListAll(dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var entries []Entry
	for _, de := range des {
		if !de.IsDir() || !ValidID(de.Name()) {
			continue
		}
		e := Entry{ID: de.Name(), Path: filepath.Join(dir, de.Name())}
		e.Manifest, e.Err = readBackupManifest(e.Path, e.ID)
		if e.Manifest != nil {
			e.Project = e.Manifest.Project
		} else {
			e.Project = projectOf(filepath.Join(e.Path, ManifestName))
		}
		entries = append(entries, e)
	}
	sort.SliceStable(entries, func(i, j int) bool {
		ti, tj := entries[i].sortTime(), entries[j].sortTime()
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return entries[i].ID > entries[j].ID
	})
	return entries, nil
}

// Projects returns the projects that have backups in dir, sorted.
func Projects(dir string) ([]string, error) {
	all, err := ListAll(dir)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range all {
		if e.Project != "" && !seen[e.Project] {
			seen[e.Project] = true
			out = append(out, e.Project)
		}
	}
	sort.Strings(out)
	return out, nil
}

// projectOf reads just the project field of a manifest that did not
// validate, so a damaged backup is still shown to its own project.
func projectOf(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var m struct {
		Project string `json:"project"`
	}
	if json.NewDecoder(io.LimitReader(f, maxManifestSize)).Decode(&m) != nil {
		return ""
	}
	return m.Project
}

func (e Entry) sortTime() time.Time {
	if e.Manifest != nil && !e.Manifest.Started.IsZero() {
		return e.Manifest.Started
	}
	t, _ := idTime(e.ID)
	return t
}

// readBackupManifest reads the manifest of the backup directory path and
// checks that it belongs to id.
func readBackupManifest(path, id string) (*Manifest, error) {
	m, err := ReadManifest(filepath.Join(path, ManifestName))
	if err != nil {
		return nil, err
	}
	if m.ID != id {
		return nil, fmt.Errorf("manifest %s: id %q does not match directory %q", filepath.Join(path, ManifestName), m.ID, id)
	}
	return m, nil
}

// ForeignError is returned by Open for a backup that exists but belongs
// to another project.
type ForeignError struct {
	ID, Project string // the backup and the project it belongs to
	Want        string // the project that asked
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("backup %s belongs to project %q, not to %q", e.ID, e.Project, e.Want)
}

// Open returns the manifest and directory of project's backup id in dir.
// id may be Latest, meaning the first backup List returns for project; if
// that one's manifest is broken, its error is returned rather than
// silently using an older backup. A backup that does not exist (or no
// backup of project at all, for Latest) gives an error wrapping
// ErrNotFound; one of another project a *ForeignError.
func Open(dir, project, id string) (*Manifest, string, error) {
	if id == Latest {
		entries, err := List(dir, project)
		if err != nil {
			return nil, "", err
		}
		if len(entries) == 0 {
			return nil, "", fmt.Errorf("no backup of project %q in %s: %w", project, dir, ErrNotFound)
		}
		e := entries[0]
		if e.Err != nil {
			return nil, "", fmt.Errorf("latest backup %s: %w", e.ID, e.Err)
		}
		return e.Manifest, e.Path, nil
	}
	if !ValidID(id) {
		return nil, "", fmt.Errorf("%q is not a valid backup id", id)
	}
	path := filepath.Join(dir, id)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("backup %s is not in %s: %w", id, dir, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("backup %s: %w", id, err)
	}
	if !fi.IsDir() {
		return nil, "", fmt.Errorf("backup %s: %s is not a directory", id, path)
	}
	m, err := readBackupManifest(path, id)
	if err != nil {
		if p := projectOf(filepath.Join(path, ManifestName)); p != "" && p != project {
			return nil, "", &ForeignError{ID: id, Project: p, Want: project}
		}
		return nil, "", fmt.Errorf("backup %s: %w", id, err)
	}
	if m.Project != project {
		return nil, "", &ForeignError{ID: id, Project: m.Project, Want: project}
	}
	return m, path, nil
}
