package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestStoreSeedOnce(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if seeded, err := s.Seed(); err != nil || !seeded {
		t.Fatalf("first Seed() = %v, %v; want true, nil", seeded, err)
	}
	if err := s.Delete("product-001"); err != nil {
		t.Fatal(err)
	}
	if seeded, err := s.Seed(); err != nil || seeded {
		t.Fatalf("second Seed() = %v, %v; want false, nil", seeded, err)
	}
	got, err := s.List("product-")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"product-002", "product-003"}; !slices.Equal(got, want) {
		t.Errorf("List after delete and reseed = %v, want %v", got, want)
	}
}

func TestStorePutGetList(t *testing.T) {
	dir := t.TempDir()
	// A temp file left by a crash must be cleaned up and never listed.
	if err := os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file still there: %v", err)
	}
	for _, k := range []string{"b", "a", "order-1"} {
		if err := s.Put(k, []byte("v-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put("../escape", nil); err == nil {
		t.Error("Put(../escape) succeeded, want invalid key")
	}
	if got, err := s.Get("a"); err != nil || string(got) != "v-a" {
		t.Errorf("Get(a) = %q, %v", got, err)
	}
	if _, err := s.Get("missing"); !errors.Is(err, errNotFound) {
		t.Errorf("Get(missing) error = %v, want errNotFound", err)
	}
	got, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "order-1"}; !slices.Equal(got, want) {
		t.Errorf("List() = %v, want %v", got, want)
	}
}

// TestStack runs db, app and web in-process and places an order through the front.
func TestStack(t *testing.T) {
	s, err := openStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seed(); err != nil {
		t.Fatal(err)
	}
	db := httptest.NewServer(s.Handler())
	defer db.Close()
	app := httptest.NewServer(appHandler(dbClient{base: db.URL}))
	defer app.Close()
	appURL, err := url.Parse(app.URL)
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(webHandler(appURL))
	defer web.Close()

	for _, u := range []string{db.URL + "/healthz", app.URL + "/healthz", web.URL + "/healthz"} {
		if err := runHealth([]string{u}); err != nil {
			t.Errorf("health %s: %v", u, err)
		}
	}
	resp, err := http.Post(web.URL+"/api/orders", "application/json", strings.NewReader(`{"product":"product-002","quantity":2}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/orders: %s", resp.Status)
	}
	orders, err := s.List("order-")
	if err != nil || len(orders) != 1 {
		t.Fatalf("orders in store = %v, %v; want one", orders, err)
	}
	resp, err = http.Get(web.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := new(strings.Builder)
	if _, err := io.Copy(body, resp.Body); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Hand grinder", "Orders (1)", "2 × product-002"} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("front page lacks %q:\n%s", want, body)
		}
	}
}
