package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/remote"
	"github.com/docker-autobackup/docker-autobackup/internal/s3test"
)

// The same checks run against the in-memory store and a real S3 server,
// so the fake cannot drift from what S3 does.
func TestStoreConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) { conformance(t, remote.NewMemory()) })
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t, "bkt")
		t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
		s, err := remote.NewS3(remote.S3Config{Bucket: "bkt", Prefix: "team/a", Endpoint: srv.Endpoint, Region: "us-east-1", PathStyle: true})
		if err != nil {
			t.Fatal(err)
		}
		conformance(t, s)

		bad, _ := remote.NewS3(remote.S3Config{Bucket: "nope", Endpoint: srv.Endpoint, Region: "us-east-1", PathStyle: true})
		if err := bad.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("check of a missing bucket: %v", err)
		}
		t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
		wrong, _ := remote.NewS3(remote.S3Config{Bucket: "bkt", Endpoint: srv.Endpoint, Region: "us-east-1", PathStyle: true})
		err = wrong.Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
			t.Errorf("check with a wrong secret: %v, want a hint at the credentials", err)
		}
		if err != nil && strings.Contains(err.Error(), "wrong-secret-value") {
			t.Errorf("the error shows the secret: %v", err)
		}
	})
}

func conformance(t *testing.T, s remote.Store) {
	ctx := context.Background()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("check: %v", err)
	}
	big := make([]byte, remote.PartSize+12345) // two parts on S3
	_, _ = rand.Read(big)
	n, err := s.Put(ctx, "p/x/big", bytes.NewReader(big), -1)
	if err != nil || n != int64(len(big)) {
		t.Fatalf("put big: %d, %v", n, err)
	}
	if _, err := s.Put(ctx, "p/x/small", strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "p/y/other", strings.NewReader("o"), -1); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(ctx, "p/x/big")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("get big: %d bytes, %v", len(got), err)
	}
	o, err := s.Stat(ctx, "p/x/small")
	if err != nil || o.Size != 5 {
		t.Errorf("stat: %+v, %v", o, err)
	}
	if _, err := s.Stat(ctx, "p/x/none"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("stat missing: got %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "p/x/none"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("get missing: got %v, want ErrNotFound", err)
	}
	objs, err := s.List(ctx, "p/x/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	if got, want := strings.Join(keys, " "), "p/x/big p/x/small"; got != want {
		t.Errorf("list: got %q, want %q", got, want)
	}
	if err := s.Delete(ctx, "p/x/small"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "p/x/small"); err != nil {
		t.Errorf("delete twice: %v, want nil", err)
	}
	if _, err := s.Stat(ctx, "p/x/small"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("stat deleted: %v", err)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
