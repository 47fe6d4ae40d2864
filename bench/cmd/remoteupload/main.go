// Command remoteupload measures the upload of one large backup to an S3
// server with the remote package, as a run's upload step does it: wall
// time, throughput and the process's peak RSS, printed as one JSON line.
// bench/remote.sh drives it.
//
//	remoteupload -work DIR -size-gb 4 -endpoint http://127.0.0.1:PORT -bucket b [-encrypt age1…]
//
// The backup (one archive of incompressible bytes) is made once in DIR and
// reused. Credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/crypt"
	"github.com/docker-autobackup/docker-autobackup/internal/remote"
)

func main() {
	work := flag.String("work", "", "folder for the backup (made once)")
	sizeGB := flag.Float64("size-gb", 4, "archive size in GB (10^9 bytes)")
	endpoint := flag.String("endpoint", "", "S3 endpoint")
	bucket := flag.String("bucket", "bench", "bucket")
	encrypt := flag.String("encrypt", "", "age recipient: encrypt the upload")
	flag.Parse()
	if err := run(*work, int64(*sizeGB*1e9), *endpoint, *bucket, *encrypt); err != nil {
		fmt.Fprintln(os.Stderr, "remoteupload:", err)
		os.Exit(1)
	}
}

func run(work string, size int64, endpoint, bucket, encrypt string) error {
	ctx := context.Background()
	m, dir, err := ensureBackup(work, size)
	if err != nil {
		return err
	}
	s, err := remote.NewS3(remote.S3Config{Bucket: bucket, Endpoint: endpoint, Region: "us-east-1", PathStyle: true})
	if err != nil {
		return err
	}
	rs, err := crypt.ParseRecipients(encrypt, "")
	if err != nil {
		return err
	}
	t := &remote.Target{Store: s, Folder: "bench", Recipients: rs}
	start := time.Now()
	idx, err := t.Upload(ctx, dir, m)
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"encrypted": len(rs) > 0, "bytes": idx.SizeBytes, "seconds": secs,
		"mb_per_s": float64(idx.SizeBytes) / 1e6 / secs, "peak_rss_mb": float64(ru.Maxrss) / 1024,
		"part_size_mib": remote.PartSize >> 20,
	})
}

// ensureBackup makes (once) a committed backup holding one archive of
// size pseudo-random bytes, which no compressor shrinks.
func ensureBackup(work string, size int64) (*archive.Manifest, string, error) {
	if entries, err := archive.ListAll(work); err == nil && len(entries) > 0 && entries[0].Manifest != nil &&
		entries[0].Manifest.Volumes[0].ArchiveBytes == size {
		return entries[0].Manifest, entries[0].Path, nil
	}
	id := archive.NewID(time.Now())
	p, err := archive.Begin(work, id, "bench")
	if err != nil {
		return nil, "", err
	}
	defer p.Abort()
	f, err := os.Create(filepath.Join(p.Path(), "bench.tar.zst"))
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	src := rand.NewChaCha8([32]byte{1})
	if _, err := io.CopyN(io.MultiWriter(f, h), src, size); err != nil {
		return nil, "", err
	}
	if err := f.Close(); err != nil {
		return nil, "", err
	}
	now := time.Now().UTC()
	m := &archive.Manifest{ID: id, Project: "bench", Mode: archive.ModeStream, Started: now, Finished: now,
		Volumes: []archive.Volume{{Name: "bench_data", Key: "data", Driver: "local", Archive: "bench.tar.zst",
			ArchiveBytes: size, TarBytes: size, SHA256: hex.EncodeToString(h.Sum(nil))}}}
	if err := p.Commit(m); err != nil {
		return nil, "", err
	}
	return m, filepath.Join(work, id), nil
}
