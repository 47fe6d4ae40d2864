package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// seedMarker names an empty file in the store's directory. Seed puts the
// seed keys only while the file is missing and creates it after them, so
// a seed key that is deleted stays deleted. keyRE rejects names starting
// with ".", so the marker is never a key.
const seedMarker = ".seeded"

// seed holds the keys Seed writes into a store without seedMarker.
var seed = map[string]string{
	"product-001": `{"id":"product-001","name":"Espresso beans, 1 kg","price_cents":2450}`,
	"product-002": `{"id":"product-002","name":"Hand grinder","price_cents":6900}`,
	"product-003": `{"id":"product-003","name":"Milk jug","price_cents":1290}`,
}

var keyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

var errNotFound = errors.New("not found")

// Store keeps one file per key in dir. Every write goes to a temporary file
// in dir, is fsynced and renamed over the key, and the directory is fsynced:
// a reader (or a backup taken while the store is stopped) never sees half a
// value.
type Store struct{ dir string }

func openStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Temporary files left by a crash mid-write are garbage.
	tmps, err := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if err != nil {
		return nil, err
	}
	for _, tmp := range tmps {
		if err := os.Remove(tmp); err != nil {
			return nil, err
		}
	}
	return &Store{dir: dir}, nil
}

// Seed puts every key of seed and then creates seedMarker, unless
// seedMarker exists, in which case it does nothing. It reports whether it
// put the keys.
func (s *Store) Seed() (bool, error) {
	if _, err := os.Stat(filepath.Join(s.dir, seedMarker)); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	for k, v := range seed {
		if err := s.Put(k, []byte(v)); err != nil {
			return false, err
		}
	}
	// The marker is written last: a crash before it re-seeds the same values.
	return true, s.writeFile(seedMarker, nil)
}

func (s *Store) Get(key string) ([]byte, error) {
	if !keyRE.MatchString(key) {
		return nil, fmt.Errorf("invalid key %q", key)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotFound
	}
	return b, err
}

func (s *Store) Put(key string, value []byte) error {
	if !keyRE.MatchString(key) {
		return fmt.Errorf("invalid key %q", key)
	}
	return s.writeFile(key, value)
}

func (s *Store) Delete(key string) error {
	if !keyRE.MatchString(key) {
		return fmt.Errorf("invalid key %q", key)
	}
	err := os.Remove(filepath.Join(s.dir, key))
	if errors.Is(err, fs.ErrNotExist) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	return syncDir(s.dir)
}

// List returns the keys starting with prefix, sorted.
func (s *Store) List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	keys := []string{}
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && keyRE.MatchString(name) && strings.HasPrefix(name, prefix) {
			keys = append(keys, name)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (s *Store) writeFile(name string, data []byte) error {
	f, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return err
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// maxValue bounds a PUT body; this is a demo store, not a blob store.
const maxValue = 1 << 20

// Handler serves the store:
//
//	GET    /healthz        200 when the data directory is readable
//	GET    /kv/?prefix=p   JSON array of keys
//	GET    /kv/{key}       the value, 404 if absent
//	PUT    /kv/{key}       store the body (at most 1 MiB)
//	DELETE /kv/{key}       remove the key, 404 if absent
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.ReadDir(s.dir); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /kv/{$}", func(w http.ResponseWriter, r *http.Request) {
		keys, err := s.List(r.URL.Query().Get("prefix"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, keys)
	})
	mux.HandleFunc("GET /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Get(r.PathValue("key"))
		if err != nil {
			httpError(w, err)
			return
		}
		w.Write(v)
	})
	mux.HandleFunc("PUT /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		v, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxValue))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		if err := s.Put(r.PathValue("key"), v); err != nil {
			httpError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Delete(r.PathValue("key")); err != nil {
			httpError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func httpError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errNotFound):
		http.Error(w, "not found", http.StatusNotFound)
	case strings.HasPrefix(err.Error(), "invalid key"):
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Printf("write response: %v", err)
	}
}

func runDB(args []string) error {
	fl := flag.NewFlagSet("db", flag.ContinueOnError)
	listen := fl.String("listen", ":8080", "address to listen on")
	data := fl.String("data", "/data", "directory holding one file per key")
	if err := fl.Parse(args); err != nil {
		return err
	}
	s, err := openStore(*data)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	seeded, err := s.Seed()
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if seeded {
		log.Printf("seeded %d keys into empty %s", len(seed), *data)
	}
	return serve(*listen, s.Handler())
}
