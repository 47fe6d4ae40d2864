package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

// Check is the result of verifying one volume's archive. Err is nil when
// the archive is sound.
type Check struct {
	Volume  string
	Archive string
	Err     error
}

// Verify checks every volume of the backup in backupPath against its
// manifest m, reading each archive once: the file's size and SHA-256 match
// the manifest, it decompresses to the end into TarBytes bytes, its tar
// structure is valid up to the end-of-archive marker, and every entry passes
// the safety rules of Sanitize. It returns one Check per volume, in manifest
// order; several problems of one archive are joined in its Err. When ctx is
// cancelled, the remaining checks carry ctx's error.
func Verify(ctx context.Context, backupPath string, m *Manifest, opts SafetyOptions) []Check {
	return VerifyProgress(ctx, backupPath, m, opts, nil)
}

// VerifyProgress is Verify reporting on r (which may be nil) how far it
// read each archive: VolumeStart, VolumeBytes and VolumeDone events with
// the archive's bytes.
func VerifyProgress(ctx context.Context, backupPath string, m *Manifest, opts SafetyOptions, r progress.Reporter) []Check {
	checks := make([]Check, 0, len(m.Volumes))
	for _, v := range m.Volumes {
		c := Check{Volume: v.Name, Archive: v.Archive}
		if err := ctx.Err(); err != nil {
			c.Err = err
		} else {
			progress.Send(r, progress.Event{Kind: progress.VolumeStart, Volume: v.Name, Total: v.ArchiveBytes})
			var read int64
			last := time.Now()
			c.Err = verifyVolume(ctx, backupPath, v, opts, func(n int64) {
				read = n
				if now := time.Now(); now.Sub(last) >= reportEvery {
					last = now
					progress.Send(r, progress.Event{Kind: progress.VolumeBytes, Volume: v.Name, Bytes: n, Total: v.ArchiveBytes})
				}
			})
			progress.Send(r, progress.Event{Kind: progress.VolumeDone, Volume: v.Name, Bytes: read, Total: v.ArchiveBytes})
		}
		checks = append(checks, c)
	}
	return checks
}

// reportEvery is how often a long read reports its progress.
const reportEvery = 200 * time.Millisecond

// verifyVolume checks one archive; report (if not nil) gets the number of
// the archive's bytes read so far after each read.
func verifyVolume(ctx context.Context, backupPath string, v Volume, opts SafetyOptions, report func(int64)) error {
	f, err := openArchive(backupPath, v)
	if err != nil {
		return err
	}
	defer f.Close()

	// One pass: the file is hashed as the decoder reads it. A synchronous
	// decoder reads only in this goroutine, so the hash is not raced.
	sum := sha256.New()
	file := &countReader{r: io.TeeReader(ctxReader{ctx: ctx, r: f}, sum), report: report}
	dec, err := newDecoder(file, 1)
	if err != nil {
		return fmt.Errorf("archive %s: %w", v.Archive, err)
	}
	defer dec.Close()
	tarStream := &countReader{r: dec}

	var contentErr error
	if _, err := CheckTar(tarStream, opts); err != nil {
		contentErr = fmt.Errorf("archive %s: %w", v.Archive, err)
	} else if _, err := io.Copy(io.Discard, tarStream); err != nil {
		// Whatever follows the end marker (tar pads to its record size)
		// must still decompress.
		contentErr = fmt.Errorf("archive %s: decompress: %w", v.Archive, err)
	} else if tarStream.n != v.TarBytes {
		contentErr = fmt.Errorf("archive %s: tar size mismatch: manifest says %d bytes, archive holds %d",
			v.Archive, v.TarBytes, tarStream.n)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Hash whatever the decoder did not need, so a checksum is always known.
	if _, err := io.Copy(io.Discard, file); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return errors.Join(fmt.Errorf("archive %s: read: %w", v.Archive, err), contentErr)
	}

	var errs []error
	if got := hex.EncodeToString(sum.Sum(nil)); got != v.SHA256 {
		errs = append(errs, fmt.Errorf("archive %s: checksum mismatch: manifest says %s, file has %s", v.Archive, v.SHA256, got))
	}
	if file.n != v.ArchiveBytes {
		errs = append(errs, fmt.Errorf("archive %s: size mismatch: manifest says %d bytes, file has %d", v.Archive, v.ArchiveBytes, file.n))
	}
	errs = append(errs, contentErr)
	return errors.Join(errs...)
}

type countReader struct {
	r      io.Reader
	n      int64
	report func(int64) // may be nil
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.report != nil {
		c.report(c.n)
	}
	return n, err
}
