package remote

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors of a Store.
var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrLocked: the object is protected by Object Lock (retention or
	// legal hold) and was not deleted.
	ErrLocked = errors.New("object is locked")
)

// Object describes one stored object.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Store is a bucket (or a part of one). Keys are slash-separated and never
// start with a slash.
type Store interface {
	// Put stores r under key, replacing any object there. size is the
	// length of r, or -1 when unknown; either way the data is streamed
	// with bounded memory. It returns the number of bytes stored. Not
	// idempotent in cost, but safe to repeat.
	Put(ctx context.Context, key string, r io.Reader, size int64) (int64, error)
	// Get opens the object for reading. A missing object is ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat returns the object's size and time. A missing object is
	// ErrNotFound.
	Stat(ctx context.Context, key string) (Object, error)
	// List returns every object whose key starts with prefix, in key
	// order.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes the object. A missing object is not an error
	// (idempotent); a locked one is ErrLocked.
	Delete(ctx context.Context, key string) error
	// Check makes sure the store is reachable and writable with the
	// configured credentials, without leaving anything behind. Its error
	// says what to fix.
	Check(ctx context.Context) error
	// String names the store for messages, without secrets.
	String() string
}
