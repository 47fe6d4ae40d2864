package remote_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/remote"
	"github.com/docker-autobackup/docker-autobackup/internal/s3test"
)

// A bucket with Object Lock and a default retention: uploads work (the
// server requires a checksum header on every put), and a delete of a
// locked backup reports its objects as locked and keeps its index.
func TestObjectLockBucket(t *testing.T) {
	srv := s3test.Start(t, "plain")
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	ctx := context.Background()
	c, err := minio.New(strings.TrimPrefix(srv.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(ctx, "locked", minio.MakeBucketOptions{Region: "us-east-1", ObjectLocking: true}); err != nil {
		t.Fatal(err)
	}
	mode, days, unit := minio.Governance, uint(1), minio.Days
	if err := c.SetObjectLockConfig(ctx, "locked", &mode, &days, &unit); err != nil {
		t.Fatal(err)
	}

	s, err := remote.NewS3(remote.S3Config{Bucket: "locked", Endpoint: srv.Endpoint, Region: "us-east-1", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("check of a locked bucket: %v", err)
	}
	dir := t.TempDir()
	id := archive.NewID(time.Now())
	p, err := archive.Begin(dir, id, "shop")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("not really zstd, but Upload only moves bytes")
	if err := os.WriteFile(filepath.Join(p.Path(), "v.tar.zst"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	m := &archive.Manifest{Project: "shop", Mode: archive.ModeStream, Started: time.Now().UTC(), Finished: time.Now().UTC(),
		Volumes: []archive.Volume{{Name: "shop_v", Key: "v", Driver: "local", Archive: "v.tar.zst", ArchiveBytes: int64(len(data)), SHA256: sum(data)}}}
	if err := p.Commit(m); err != nil {
		t.Fatal(err)
	}
	tg := &remote.Target{Store: s, Folder: "shop"}
	if _, err := tg.Upload(ctx, filepath.Join(dir, id), m); err != nil {
		t.Fatalf("upload to a locked bucket: %v", err)
	}
	locked, err := tg.Delete(ctx, id)
	if err != nil || len(locked) == 0 {
		t.Fatalf("delete of a locked backup: locked %v, err %v; want locked objects reported", locked, err)
	}
	if ok, err := tg.Has(ctx, id); !ok || err != nil {
		t.Errorf("the locked backup lost its index (%v)", err)
	}
	if err := s.Delete(ctx, "shop/"+id+"/v.tar.zst"); !errors.Is(err, remote.ErrLocked) {
		t.Errorf("delete of a locked object: got %v, want ErrLocked", err)
	}
}
