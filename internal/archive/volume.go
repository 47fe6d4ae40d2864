package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/docker-autobackup/docker-autobackup/internal/atomicfile"
	"github.com/docker-autobackup/docker-autobackup/internal/iocount"
)

// ArchiveExt ends the file name of every volume archive.
const ArchiveExt = ".tar.zst"

// DefaultLevel is the zstd level used when WriteVolume is given 0.
const DefaultLevel = 3

// progressEvery throttles WriteVolume's progress callback.
const progressEvery = 250 * time.Millisecond

// maxDecoderWindow bounds the memory a hostile archive can make the decoder
// allocate. Our encoder uses at most 8 MiB; this leaves room for archives
// made by hand with "zstd --long".
const maxDecoderWindow = 128 << 20

// EncoderLevel maps a zstd level as the zstd command line takes it (1..22,
// 0 for DefaultLevel) to the nearest level of the encoder.
func EncoderLevel(level int) (zstd.EncoderLevel, error) {
	if level == 0 {
		level = DefaultLevel
	}
	if level < 1 || level > 22 {
		return 0, fmt.Errorf("compression level %d: must be between 1 and 22", level)
	}
	return zstd.EncoderLevelFromZstd(level), nil
}

// WriteVolume compresses tarStream with zstd (level as for EncoderLevel,
// using all cores) into a new archive in the partial directory, hashing the
// compressed bytes on the way; Commit fsyncs it. On success it fills
// v.Archive (a safe file name derived from v.Name), v.ArchiveBytes,
// v.TarBytes and v.SHA256. progress, if not nil, is called from the calling
// goroutine with the number of tar bytes read so far, at most every 250 ms
// and once at the end.
//
// Cancelling ctx stops the copy at the next read and returns ctx's error;
// a Read that blocks is not interrupted, so callers should pass a stream
// that ends when ctx is cancelled (as the Docker client's streams do).
// On error nothing is left behind in the partial directory.
func (p *Pending) WriteVolume(ctx context.Context, v *Volume, tarStream io.Reader, level int, progress func(tarBytes int64)) (err error) {
	encLevel, err := EncoderLevel(level)
	if err != nil {
		return fmt.Errorf("volume %s: %w", v.Name, err)
	}
	name, err := p.reserveArchive(v.Name)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			p.releaseArchive(name)
		}
	}()

	f, err := atomicfile.CreateTemp(p.path, name, 0o600)
	if err != nil {
		return fmt.Errorf("volume %s: %w", v.Name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()

	sum := sha256.New()
	out := &iocount.Writer{W: io.MultiWriter(f, sum)}
	enc, err := newEncoder(out, encLevel)
	if err != nil {
		return fmt.Errorf("volume %s: zstd encoder: %w", v.Name, err)
	}
	in := &iocount.Reader{R: ctxReader{ctx: ctx, r: tarStream}, Report: progress, Every: progressEvery}
	if _, err := io.CopyBuffer(enc, in, make([]byte, 1<<20)); err != nil {
		_ = enc.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("volume %s: %w", v.Name, ctxErr)
		}
		return fmt.Errorf("volume %s: compress: %w", v.Name, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("volume %s: compress: %w", v.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("volume %s: %w", v.Name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("volume %s: close %s: %w", v.Name, tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(p.path, name)); err != nil {
		return fmt.Errorf("volume %s: %w", v.Name, err)
	}
	p.mu.Lock()
	p.unsynced = append(p.unsynced, name)
	p.mu.Unlock()
	in.Flush()

	v.Archive = name
	v.ArchiveBytes = out.N
	v.TarBytes = in.N
	v.SHA256 = hex.EncodeToString(sum.Sum(nil))
	return nil
}

// reserveArchive picks an unused archive file name for the volume name.
func (p *Pending) reserveArchive(volume string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return "", fmt.Errorf("volume %s: backup %s already committed or aborted", volume, p.id)
	}
	base := ArchiveFileBase(volume)
	name := base + ArchiveExt
	for i := 2; p.archives[name]; i++ {
		name = base + "-" + strconv.Itoa(i) + ArchiveExt
	}
	p.archives[name] = true
	return name, nil
}

func (p *Pending) releaseArchive(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.archives, name)
}

// ArchiveFileBase turns a volume name into a file name stem that is safe in
// any file system: letters, digits, '_', '-' and '.' (other bytes become
// '_'), never starting with '.', never containing "..", at most 200 bytes.
func ArchiveFileBase(volume string) string {
	var b strings.Builder
	for i := 0; i < len(volume) && b.Len() < 200; i++ {
		c := volume[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		case c == '.' && b.Len() > 0 && !strings.HasSuffix(b.String(), "."):
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimRight(b.String(), ".")
	if s == "" {
		return "volume"
	}
	return s
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// OpenVolume returns the decompressed tar stream of v's archive in the
// backup directory backupPath. It does not check the checksum (Verify does);
// the zstd frame checksums still catch corruption while reading. The caller
// must close the stream.
func OpenVolume(backupPath string, v Volume) (io.ReadCloser, error) {
	f, err := openArchive(backupPath, v)
	if err != nil {
		return nil, err
	}
	dec, err := newDecoder(f, 0)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("archive %s: %w", v.Archive, err)
	}
	return &volumeReader{f: f, dec: dec, name: v.Archive}, nil
}

// NewDecoder returns a zstd decoder for an archive, with the window bound
// that keeps a hostile archive from making it allocate without limit.
func NewDecoder(r io.Reader) (*zstd.Decoder, error) { return newDecoder(r, 0) }

func newDecoder(r io.Reader, concurrency int) (*zstd.Decoder, error) {
	opts := []zstd.DOption{zstd.WithDecoderMaxWindow(maxDecoderWindow)}
	if concurrency > 0 {
		opts = append(opts, zstd.WithDecoderConcurrency(concurrency))
	}
	return zstd.NewReader(r, opts...)
}

// openArchive opens v's archive, refusing names that are not plain file
// names and anything that is not a regular file (a planted symlink).
func openArchive(backupPath string, v Volume) (*os.File, error) {
	if err := checkArchiveName(v.Archive); err != nil {
		return nil, fmt.Errorf("volume %s: archive: %w", v.Name, err)
	}
	path := filepath.Join(backupPath, v.Archive)
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", v.Archive, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("archive %s: not a regular file (%s)", v.Archive, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", v.Archive, err)
	}
	return f, nil
}

type volumeReader struct {
	f    *os.File
	dec  *zstd.Decoder
	name string
}

func (r *volumeReader) Read(p []byte) (int, error) {
	n, err := r.dec.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("archive %s: decompress: %w", r.name, err)
	}
	return n, err
}

func (r *volumeReader) Close() error {
	r.dec.Close()
	return r.f.Close()
}
