package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// PartSize is the multipart part size of uploads. minio-go buffers one part
// in memory (and a single part by default is ~0.5 GiB), so it bounds the
// memory an upload needs, whatever the archive's size.
const PartSize = 16 << 20

// S3Config configures an S3-compatible store. It holds no secret: keys
// come from the environment, the shared credentials file, or files named
// here.
type S3Config struct {
	Bucket    string
	Prefix    string // key prefix inside the bucket, no leading or trailing slash
	Endpoint  string // http(s)://host[:port]; empty for AWS
	Region    string
	PathStyle bool

	AccessKeyFile    string // files holding the key id, the secret and a session token
	SecretKeyFile    string
	SessionTokenFile string
}

// ParseURL splits s3://bucket/prefix into bucket and prefix.
func ParseURL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("remote url %q: want s3://bucket or s3://bucket/prefix", s)
	}
	if u.User != nil {
		return "", "", fmt.Errorf("remote url: credentials do not belong in the url; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or remote.access_key_file")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("remote url %q: want s3://bucket/prefix without ? or #", s)
	}
	return u.Host, strings.Trim(u.Path, "/"), nil
}

// S3 is a Store in an S3-compatible bucket.
type S3 struct {
	client *minio.Client
	cfg    S3Config
	where  string
}

var _ Store = (*S3)(nil)

// NewS3 returns the store; it does not contact the server (see Check).
func NewS3(cfg S3Config) (*S3, error) {
	host, secure := "s3.amazonaws.com", true
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("remote endpoint %q: want http://host:port or https://host", cfg.Endpoint)
		}
		if u.User != nil {
			return nil, errors.New("remote endpoint: credentials do not belong in the endpoint")
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	creds, err := s3Credentials(cfg)
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Region: cfg.Region, BucketLookup: lookup})
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	scheme := "https"
	if !secure {
		scheme = "http"
	}
	where := "s3://" + cfg.Bucket
	if cfg.Prefix != "" {
		where += "/" + cfg.Prefix
	}
	where += " at " + scheme + "://" + host
	return &S3{client: c, cfg: cfg, where: where}, nil
}

// s3Credentials: the *_file settings if given, else what AWS tools use:
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, then the
// shared credentials file (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE).
func s3Credentials(cfg S3Config) (*credentials.Credentials, error) {
	if cfg.AccessKeyFile != "" || cfg.SecretKeyFile != "" {
		if cfg.AccessKeyFile == "" || cfg.SecretKeyFile == "" {
			return nil, errors.New("remote: set both remote.access_key_file and remote.secret_key_file, or neither")
		}
		id, err := readSecretFile(cfg.AccessKeyFile)
		if err != nil {
			return nil, err
		}
		secret, err := readSecretFile(cfg.SecretKeyFile)
		if err != nil {
			return nil, err
		}
		token := ""
		if cfg.SessionTokenFile != "" {
			if token, err = readSecretFile(cfg.SessionTokenFile); err != nil {
				return nil, err
			}
		}
		return credentials.NewStaticV4(id, secret, token), nil
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
	}), nil
}

func readSecretFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// The path is not secret; the content is, and is never shown.
		return "", fmt.Errorf("remote credentials: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", fmt.Errorf("remote credentials: %s is empty", path)
	}
	return s, nil
}

func (s *S3) String() string { return s.where }

func (s *S3) key(k string) string {
	if s.cfg.Prefix == "" {
		return k
	}
	return s.cfg.Prefix + "/" + k
}

// Put streams r as a multipart upload of PartSize parts (one part in
// memory at a time), each with a Content-MD5 the server checks (Object
// Lock buckets require it too).
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) (int64, error) {
	opts := minio.PutObjectOptions{
		PartSize:       PartSize,
		SendContentMd5: true,
		ContentType:    "application/octet-stream",
	}
	info, err := s.client.PutObject(ctx, s.cfg.Bucket, s.key(key), onlyReader{r}, size, opts)
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", key, s.explain(err))
	}
	return info.Size, nil
}

// onlyReader hides io.ReaderAt and io.Seeker, which would make minio-go
// read parts in parallel with a buffer each.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if _, err := s.Stat(ctx, key); err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.cfg.Bucket, s.key(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", key, s.explain(err))
	}
	return obj, nil
}

func (s *S3) Stat(ctx context.Context, key string) (Object, error) {
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, s.key(key), minio.StatObjectOptions{})
	if err != nil {
		return Object{}, fmt.Errorf("stat %s: %w", key, s.explain(err))
	}
	return Object{Key: key, Size: info.Size, Modified: info.LastModified}, nil
}

func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	full := s.key(prefix)
	for o := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: full, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, s.explain(o.Err))
		}
		k := o.Key
		if s.cfg.Prefix != "" {
			k = strings.TrimPrefix(k, s.cfg.Prefix+"/")
		}
		out = append(out, Object{Key: k, Size: o.Size, Modified: o.LastModified})
	}
	return out, nil
}

func (s *S3) Delete(ctx context.Context, key string) error {
	err := s.client.RemoveObject(ctx, s.cfg.Bucket, s.key(key), minio.RemoveObjectOptions{})
	if err == nil {
		return nil
	}
	if e := minio.ToErrorResponse(err); e.Code == minio.NoSuchKey {
		return nil
	}
	return fmt.Errorf("delete %s: %w", key, s.explain(err))
}

// Check looks the bucket up, writes a small object and deletes it again.
func (s *S3) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("remote %s: %w", s.where, s.explain(err))
	}
	if !ok {
		return fmt.Errorf("remote %s: bucket %q does not exist; create it, or fix remote.url", s.where, s.cfg.Bucket)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	probe := ".autobackup-write-test-" + hex.EncodeToString(b[:])
	data := []byte("docker autobackup checks that it may write here\n")
	if _, err := s.Put(ctx, probe, bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("remote %s: not writable: %w", s.where, err)
	}
	if err := s.Delete(ctx, probe); err != nil && !errors.Is(err, ErrLocked) {
		return fmt.Errorf("remote %s: cannot delete a test object: %w", s.where, err)
	}
	return nil
}

// explain maps S3 error codes to sentinels and to what the user can fix.
// Messages carry the server's code and text, never a credential.
func (s *S3) explain(err error) error {
	e := minio.ToErrorResponse(err)
	switch e.Code {
	case "":
		if strings.Contains(err.Error(), "credentials") || strings.Contains(err.Error(), "Access Key") {
			return fmt.Errorf("%w; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or remote.access_key_file and remote.secret_key_file)", err)
		}
		return fmt.Errorf("%w; is remote.endpoint right and the server up?", err)
	case minio.NoSuchKey, "NotFound":
		return fmt.Errorf("%s: %w", e.Message, ErrNotFound)
	case minio.NoSuchBucket:
		return fmt.Errorf("bucket %q does not exist (NoSuchBucket); create it, or fix remote.url", s.cfg.Bucket)
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidClientTokenId":
		return fmt.Errorf("%s (%s): the credentials are not accepted; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or remote.access_key_file and remote.secret_key_file)", e.Message, e.Code)
	case "AccessDenied":
		if strings.Contains(strings.ToLower(e.Message), "lock") || strings.Contains(strings.ToLower(e.Message), "worm") || strings.Contains(strings.ToLower(e.Message), "retention") {
			return fmt.Errorf("%s: %w", e.Message, ErrLocked)
		}
		return fmt.Errorf("%s (AccessDenied): the credentials are wrong, or may not do this in bucket %q; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or remote.access_key_file and remote.secret_key_file) and the bucket's policy", e.Message, s.cfg.Bucket)
	case "ObjectLocked", "InvalidRequest":
		if e.Code == "ObjectLocked" || strings.Contains(strings.ToLower(e.Message), "lock") {
			return fmt.Errorf("%s: %w", e.Message, ErrLocked)
		}
	}
	return fmt.Errorf("%s (%s)", e.Message, e.Code)
}
