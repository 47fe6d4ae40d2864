package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/crypt"
	"github.com/docker-autobackup/docker-autobackup/internal/iocount"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

// IndexName is the plaintext index object of a backup, written last.
const IndexName = "index.json"

// IndexVersion is the index format this package writes and reads.
const IndexVersion = 1

// maxIndexSize bounds how much of an index (untrusted) is read.
const maxIndexSize = 1 << 20

// Index is the plaintext summary of an uploaded backup: enough to list it
// without the key, and the checksum of every object as stored.
type Index struct {
	FormatVersion int           `json:"format_version"`
	ID            string        `json:"id"`
	Project       string        `json:"project"`
	Host          string        `json:"host,omitempty"`
	Tag           string        `json:"tag,omitempty"`
	Started       time.Time     `json:"started"`
	Finished      time.Time     `json:"finished"`
	Uploaded      time.Time     `json:"uploaded"`
	Encrypted     bool          `json:"encrypted"`
	SizeBytes     int64         `json:"size_bytes"` // archives as stored
	Volumes       []string      `json:"volumes"`
	Objects       []IndexObject `json:"objects"` // archives, then the manifest
}

// IndexObject is one stored object of a backup.
type IndexObject struct {
	Name   string `json:"name"` // relative to the backup's folder
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // of the bytes as stored (ciphertext when encrypted)
}

// Target is one project's place in a store.
type Target struct {
	Store Store
	// Folder is the project's folder: <project> or <project>@<host>.
	Folder string
	// Recipients encrypt archives and manifests; none uploads plaintext.
	Recipients []age.Recipient
	// Host is recorded in the indexes.
	Host string
	// Now is for tests; time.Now when nil.
	Now func() time.Time
	// Reporter, if not nil, gets the progress of uploads, downloads and
	// verifications: a Phase ("upload", "download", "verify"), then
	// VolumeStart, VolumeBytes and VolumeDone per archive, with the bytes
	// of the archive as stored locally (plaintext) where it is known.
	Reporter progress.Reporter
}

// Folder returns the folder of a project's backups in a store.
func Folder(project, host string) string {
	if host == "" {
		return project
	}
	return project + "@" + host
}

func (t *Target) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Target) key(id, name string) string { return path.Join(t.Folder, id, name) }

// Has reports whether backup id is completely uploaded (its index exists).
func (t *Target) Has(ctx context.Context, id string) (bool, error) {
	_, err := t.Store.Stat(ctx, t.key(id, IndexName))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Upload copies the committed backup in dir (manifest m) to the target:
// each archive, then the manifest, then the index, encrypted when the
// target has recipients. Every archive is hashed as it is read and must
// match the manifest, and every object's stored size must match what was
// sent; the index records the stored bytes' SHA-256. Repeating an upload
// replaces the objects.
func (t *Target) Upload(ctx context.Context, dir string, m *archive.Manifest) (*Index, error) {
	idx := &Index{FormatVersion: IndexVersion, ID: m.ID, Project: m.Project, Host: t.Host, Tag: m.Tag,
		Started: m.Started, Finished: m.Finished, Encrypted: len(t.Recipients) > 0}
	progress.Send(t.Reporter, progress.Event{Kind: progress.Phase, Message: "upload"})
	for _, v := range m.Volumes {
		f, err := os.Open(filepath.Join(dir, v.Archive))
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", m.ID, err)
		}
		r := t.track(f, v.Name, v.ArchiveBytes)
		obj, plainSum, err := t.put(ctx, m.ID, v.Archive, r)
		r.done()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", m.ID, err)
		}
		if plainSum != v.SHA256 {
			return nil, fmt.Errorf("upload %s: archive %s changed on disk: manifest says sha256 %s, read %s", m.ID, v.Archive, v.SHA256, plainSum)
		}
		idx.Objects = append(idx.Objects, obj)
		idx.Volumes = append(idx.Volumes, v.Name)
		idx.SizeBytes += obj.Size
	}
	data, err := os.ReadFile(filepath.Join(dir, archive.ManifestName))
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", m.ID, err)
	}
	obj, _, err := t.put(ctx, m.ID, archive.ManifestName, bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", m.ID, err)
	}
	idx.Objects = append(idx.Objects, obj)
	idx.Uploaded = t.now().UTC()
	js, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, err
	}
	if _, err := t.Store.Put(ctx, t.key(m.ID, IndexName), bytes.NewReader(js), int64(len(js))); err != nil {
		return nil, fmt.Errorf("upload %s: %w", m.ID, err)
	}
	return idx, nil
}

// put streams r to <id>/<name>[.age], returning the stored object and the
// SHA-256 of the plaintext read from r.
func (t *Target) put(ctx context.Context, id, name string, r io.Reader) (IndexObject, string, error) {
	plain := sha256.New()
	src := io.TeeReader(r, plain)
	stored := plain // the same bytes unless encrypted: hash them once
	if len(t.Recipients) > 0 {
		stored = sha256.New()
	}
	obj := IndexObject{Name: name}
	var body io.Reader
	var encErr chan error
	var pr *io.PipeReader
	if len(t.Recipients) > 0 {
		obj.Name += crypt.Suffix
		var pw *io.PipeWriter
		pr, pw = io.Pipe()
		encErr = make(chan error, 1)
		go func() {
			w, err := crypt.Encrypt(pw, t.Recipients)
			if err == nil {
				_, err = io.Copy(w, src)
				if cerr := w.Close(); err == nil {
					err = cerr
				}
			}
			pw.CloseWithError(err)
			encErr <- err
		}()
		body = pr
	} else {
		body = src
	}
	counted := &iocount.Reader{R: body}
	if stored != plain {
		counted.R = io.TeeReader(body, stored)
	}
	n, err := t.Store.Put(ctx, t.key(id, obj.Name), counted, -1)
	if encErr != nil {
		// Unblocks the encoder when the upload stopped early.
		pr.CloseWithError(errUploadEnded)
		if eerr := <-encErr; err == nil && eerr != nil && !errors.Is(eerr, errUploadEnded) {
			err = eerr
		}
	}
	if err != nil {
		return obj, "", err
	}
	if n != counted.N {
		return obj, "", fmt.Errorf("%s: the server stored %d bytes of %d", obj.Name, n, counted.N)
	}
	obj.Size = n
	obj.SHA256 = hexSum(stored)
	return obj, hexSum(plain), nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// Listed is an index found by List, or the error reading it.
type Listed struct {
	Folder string
	ID     string
	Index  *Index
	Err    error
}

// List returns the target's complete backups (those with an index),
// newest first.
func (t *Target) List(ctx context.Context) ([]Listed, error) {
	return listIndexes(ctx, t.Store, t.Folder+"/")
}

// ListAll returns the complete backups of every project in the store,
// newest first.
func ListAll(ctx context.Context, s Store) ([]Listed, error) {
	return listIndexes(ctx, s, "")
}

func listIndexes(ctx context.Context, s Store, prefix string) ([]Listed, error) {
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []Listed
	for _, o := range objs {
		parts := strings.Split(o.Key, "/")
		if len(parts) != 3 || parts[2] != IndexName || !archive.ValidID(parts[1]) {
			continue
		}
		l := Listed{Folder: parts[0], ID: parts[1]}
		l.Index, l.Err = readIndex(ctx, s, o.Key, l.ID)
		out = append(out, l)
	}
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := out[i].sortTime(), out[j].sortTime()
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		if out[i].ID != out[j].ID {
			return out[i].ID > out[j].ID
		}
		return out[i].Folder < out[j].Folder
	})
	return out, nil
}

func (l Listed) sortTime() time.Time {
	if l.Index != nil {
		return l.Index.Started
	}
	t, _ := time.Parse("20060102-150405", l.ID[:15])
	return t
}

func readIndex(ctx context.Context, s Store, key, id string) (*Index, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if len(data) > maxIndexSize {
		return nil, fmt.Errorf("index %s: larger than %d bytes", key, maxIndexSize)
	}
	var idx Index
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&idx); err != nil {
		return nil, fmt.Errorf("index %s: %w", key, err)
	}
	if idx.FormatVersion != IndexVersion {
		return nil, fmt.Errorf("index %s: format_version %d, this version reads %d", key, idx.FormatVersion, IndexVersion)
	}
	if idx.ID != id {
		return nil, fmt.Errorf("index %s: id %q does not match its folder", key, idx.ID)
	}
	for _, o := range idx.Objects {
		if o.Name == "" || strings.ContainsAny(o.Name, "/\\") || o.Name == ".." || o.Name == "." {
			return nil, fmt.Errorf("index %s: object name %q is not a plain name", key, o.Name)
		}
	}
	return &idx, nil
}

// Latest returns the ID of the newest complete backup, or ErrNotFound.
func (t *Target) Latest(ctx context.Context) (string, error) {
	ls, err := t.List(ctx)
	if err != nil {
		return "", err
	}
	if len(ls) == 0 {
		return "", fmt.Errorf("no backup in %s/%s: %w", t.Store, t.Folder, ErrNotFound)
	}
	if ls[0].Err != nil {
		return "", fmt.Errorf("latest remote backup %s: %w", ls[0].ID, ls[0].Err)
	}
	return ls[0].ID, nil
}

// Index reads the index of backup id.
func (t *Target) Index(ctx context.Context, id string) (*Index, error) {
	idx, err := readIndex(ctx, t.Store, t.key(id, IndexName), id)
	if err != nil {
		return nil, fmt.Errorf("remote backup %s: %w", id, err)
	}
	return idx, nil
}

// open returns a reader of object o's plaintext, checking as it reads
// that the stored bytes match the index. The returned check func reports a
// size or checksum mismatch once the reader is drained.
func (t *Target) open(ctx context.Context, id string, o IndexObject, ids []age.Identity) (io.Reader, func() error, io.Closer, error) {
	rc, err := t.Store.Get(ctx, t.key(id, o.Name))
	if err != nil {
		return nil, nil, nil, err
	}
	sum := sha256.New()
	cnt := &iocount.Reader{R: io.TeeReader(rc, sum)}
	check := func() error {
		if _, err := io.Copy(io.Discard, cnt); err != nil {
			return fmt.Errorf("%s: read: %w", o.Name, err)
		}
		if cnt.N != o.Size {
			return fmt.Errorf("%s: size mismatch: index says %d bytes, object has %d", o.Name, o.Size, cnt.N)
		}
		if got := hexSum(sum); got != o.SHA256 {
			return fmt.Errorf("%s: checksum mismatch: index says %s, object has %s", o.Name, o.SHA256, got)
		}
		return nil
	}
	var r io.Reader = cnt
	if strings.HasSuffix(o.Name, crypt.Suffix) {
		if r, err = crypt.Decrypt(cnt, ids); err != nil {
			rc.Close()
			return nil, nil, nil, fmt.Errorf("%s: %w", o.Name, err)
		}
	}
	return r, check, rc, nil
}

// Manifest downloads and decrypts the manifest of backup id. A wrong or
// missing identity fails here, before any archive is fetched.
func (t *Target) Manifest(ctx context.Context, id string, ids []age.Identity) (*Index, *archive.Manifest, error) {
	idx, err := t.Index(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	o, ok := idx.object(archive.ManifestName)
	if !ok {
		return nil, nil, fmt.Errorf("remote backup %s: the index lists no manifest", id)
	}
	if idx.Encrypted && len(ids) == 0 {
		return nil, nil, fmt.Errorf("remote backup %s is encrypted: %w", id, ErrNoIdentity)
	}
	r, check, c, err := t.open(ctx, id, o, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("remote backup %s: %w", id, err)
	}
	defer c.Close()
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err == nil {
		err = check()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("remote backup %s: manifest: %w", id, err)
	}
	m, err := archive.ParseManifest(data)
	if err != nil {
		return nil, nil, fmt.Errorf("remote backup %s: manifest: %w", id, err)
	}
	if m.ID != id {
		return nil, nil, fmt.Errorf("remote backup %s: manifest has id %q", id, m.ID)
	}
	return idx, m, nil
}

// ErrNoIdentity: an encrypted backup was asked for without an identity.
var ErrNoIdentity = errors.New("no identity given: pass --identity FILE, set remote.identity_file or AUTOBACKUP_IDENTITY_FILE")

func (idx *Index) object(plainName string) (IndexObject, bool) {
	for _, o := range idx.Objects {
		if o.Name == plainName || o.Name == plainName+crypt.Suffix {
			return o, true
		}
	}
	return IndexObject{}, false
}

// Download fetches backup id into the backup folder dir as a complete
// local backup (written as a partial folder, committed at the end), each
// archive decrypted and checked against the index and the manifest as it
// is written. It returns the manifest and the backup's folder.
func (t *Target) Download(ctx context.Context, id, dir string, ids []age.Identity) (*archive.Manifest, string, error) {
	idx, m, err := t.Manifest(ctx, id, ids)
	if err != nil {
		return nil, "", err
	}
	p, err := archive.Begin(dir, id, m.Project)
	if err != nil {
		return nil, "", err
	}
	defer p.Abort()
	progress.Send(t.Reporter, progress.Event{Kind: progress.Phase, Message: "download"})
	for _, v := range m.Volumes {
		if err := t.fetchArchive(ctx, idx, v, p.Path(), ids); err != nil {
			return nil, "", fmt.Errorf("download %s: %w", id, err)
		}
	}
	if err := p.Commit(m); err != nil {
		return nil, "", err
	}
	return m, filepath.Join(dir, id), nil
}

func (t *Target) fetchArchive(ctx context.Context, idx *Index, v archive.Volume, into string, ids []age.Identity) error {
	o, ok := idx.object(v.Archive)
	if !ok {
		return fmt.Errorf("the index lists no object for archive %s", v.Archive)
	}
	r, check, c, err := t.open(ctx, idx.ID, o, ids)
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := os.OpenFile(filepath.Join(into, v.Archive), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	sum := sha256.New()
	tr := t.track(r, v.Name, v.ArchiveBytes)
	n, err := io.Copy(io.MultiWriter(f, sum), tr)
	tr.done()
	if err != nil {
		return fmt.Errorf("%s: %w", o.Name, err)
	}
	if err := check(); err != nil {
		return err
	}
	if n != v.ArchiveBytes || hexSum(sum) != v.SHA256 {
		return fmt.Errorf("archive %s: does not match the manifest (%d bytes, sha256 %s; want %d, %s)", v.Archive, n, hexSum(sum), v.ArchiveBytes, v.SHA256)
	}
	return f.Close()
}

// Check is the result of verifying one remote object.
type Check struct {
	Object string
	Err    error
}

// Verify re-reads every object of backup id and compares it with the
// index (size and SHA-256 as stored). With identities (or for a
// plaintext backup) the manifest is read too and each archive's
// plaintext must match its size and SHA-256 there; indexOnly reports an
// encrypted backup checked without identities, against the index alone.
func (t *Target) Verify(ctx context.Context, id string, ids []age.Identity) (checks []Check, indexOnly bool, err error) {
	idx, err := t.Index(ctx, id)
	if err != nil {
		return nil, false, err
	}
	var m *archive.Manifest
	indexOnly = idx.Encrypted && len(ids) == 0
	if !indexOnly {
		if _, m, err = t.Manifest(ctx, id, ids); err != nil {
			return []Check{{Object: archive.ManifestName, Err: err}}, false, nil
		}
	}
	progress.Send(t.Reporter, progress.Event{Kind: progress.Phase, Message: "verify"})
	for _, o := range idx.Objects {
		c := Check{Object: o.Name}
		c.Err = t.verifyObject(ctx, idx, o, m, ids)
		checks = append(checks, c)
	}
	return checks, indexOnly, nil
}

func (t *Target) verifyObject(ctx context.Context, idx *Index, o IndexObject, m *archive.Manifest, ids []age.Identity) error {
	var want *archive.Volume
	if m != nil {
		for i, v := range m.Volumes {
			if o.Name == v.Archive || o.Name == v.Archive+crypt.Suffix {
				want = &m.Volumes[i]
			}
		}
	}
	name := o.Name // what the progress is about: the volume, where known
	if want != nil {
		name = want.Name
	}
	if want == nil || (idx.Encrypted && len(ids) == 0) {
		rc, err := t.Store.Get(ctx, t.key(idx.ID, o.Name))
		if err != nil {
			return err
		}
		defer rc.Close()
		sum := sha256.New()
		tr := t.track(rc, name, o.Size)
		n, err := io.Copy(sum, tr)
		tr.done()
		if err != nil {
			return fmt.Errorf("%s: read: %w", o.Name, err)
		}
		if n != o.Size {
			return fmt.Errorf("%s: size mismatch: index says %d bytes, object has %d", o.Name, o.Size, n)
		}
		if got := hexSum(sum); got != o.SHA256 {
			return fmt.Errorf("%s: checksum mismatch: index says %s, object has %s", o.Name, o.SHA256, got)
		}
		return nil
	}
	r, check, c, err := t.open(ctx, idx.ID, o, ids)
	if err != nil {
		return err
	}
	defer c.Close()
	sum := sha256.New()
	tr := t.track(r, name, want.ArchiveBytes)
	n, rerr := io.Copy(sum, tr)
	tr.done()
	cerr := check()
	if cerr != nil {
		return cerr
	}
	if rerr != nil {
		return fmt.Errorf("%s: %w", o.Name, rerr)
	}
	if n != want.ArchiveBytes || hexSum(sum) != want.SHA256 {
		return fmt.Errorf("%s: does not match the manifest: %d bytes, sha256 %s; want %d, %s", o.Name, n, hexSum(sum), want.ArchiveBytes, want.SHA256)
	}
	return nil
}

// Delete removes backup id: the archives and the manifest first, the index
// last, so a backup is listed until all its data is gone. Objects under
// Object Lock are left and returned in locked (the backup then stays
// listed); err is for other failures.
func (t *Target) Delete(ctx context.Context, id string) (locked []string, err error) {
	objs, err := t.Store.List(ctx, path.Join(t.Folder, id)+"/")
	if err != nil {
		return nil, err
	}
	var index string
	var errs []error
	for _, o := range objs {
		if path.Base(o.Key) == IndexName {
			index = o.Key
			continue
		}
		if err := t.Store.Delete(ctx, o.Key); errors.Is(err, ErrLocked) {
			locked = append(locked, path.Base(o.Key))
		} else if err != nil {
			errs = append(errs, err)
		}
	}
	if len(locked) > 0 || len(errs) > 0 || index == "" {
		return locked, errors.Join(errs...)
	}
	if err := t.Store.Delete(ctx, index); errors.Is(err, ErrLocked) {
		locked = append(locked, IndexName)
	} else if err != nil {
		return locked, err
	}
	return locked, nil
}

var errUploadEnded = errors.New("upload ended")

// reportEvery is how often a transfer reports its progress.
const reportEvery = 200 * time.Millisecond

// tracked is a reader that reports the bytes read through it as the
// progress of one archive (named volume, total bytes expected).
type tracked struct {
	iocount.Reader
	rep    progress.Reporter
	volume string
	total  int64
}

// track starts reporting the progress of reading r; call done at the end.
func (t *Target) track(r io.Reader, volume string, total int64) *tracked {
	progress.Send(t.Reporter, progress.Event{Kind: progress.VolumeStart, Volume: volume, Total: total})
	c := &tracked{rep: t.Reporter, volume: volume, total: total}
	c.Reader = iocount.Reader{R: r, Every: reportEvery, Report: func(n int64) {
		progress.Send(c.rep, progress.Event{Kind: progress.VolumeBytes, Volume: volume, Bytes: n, Total: total})
	}}
	return c
}

func (c *tracked) done() {
	progress.Send(c.rep, progress.Event{Kind: progress.VolumeDone, Volume: c.volume, Bytes: c.N, Total: c.total})
}
