package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Memory is a Store in memory, for tests. Locked keys refuse deletion;
// PutErr, when set, fails Puts of keys it returns an error for.
type Memory struct {
	mu      sync.Mutex
	objects map[string][]byte
	times   map[string]time.Time
	Locked  map[string]bool
	PutErr  func(key string) error
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory() *Memory {
	return &Memory{objects: map[string][]byte{}, times: map[string]time.Time{}, Locked: map[string]bool{}}
}

func (m *Memory) Put(ctx context.Context, key string, r io.Reader, size int64) (int64, error) {
	if m.PutErr != nil {
		if err := m.PutErr(key); err != nil {
			return 0, err
		}
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	if size >= 0 && int64(len(data)) != size {
		return 0, fmt.Errorf("put %s: got %d bytes, want %d", key, len(data), size)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[key] = data
	m.times[key] = time.Now()
	return int64(len(data)), nil
}

func (m *Memory) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.objects[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(bytes.Clone(data))), nil
}

func (m *Memory) Stat(ctx context.Context, key string) (Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.objects[key]
	if !ok {
		return Object{}, fmt.Errorf("stat %s: %w", key, ErrNotFound)
	}
	return Object{Key: key, Size: int64(len(data)), Modified: m.times[key]}, nil
}

func (m *Memory) List(ctx context.Context, prefix string) ([]Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Object
	for k, v := range m.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Object{Key: k, Size: int64(len(v)), Modified: m.times[k]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (m *Memory) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Locked[key] {
		return fmt.Errorf("delete %s: %w", key, ErrLocked)
	}
	delete(m.objects, key)
	delete(m.times, key)
	return nil
}

func (m *Memory) Check(ctx context.Context) error { return nil }

func (m *Memory) String() string { return "memory" }

// Corrupt flips a byte of the object at key, for tests.
func (m *Memory) Corrupt(key string, offset int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d := m.objects[key]; offset < len(d) {
		d[offset] ^= 0xff
	}
}
