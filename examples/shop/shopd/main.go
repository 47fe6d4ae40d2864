// Command shopd is the one program behind the example shop stack in
// examples/shop. It is a real, if tiny, three-tier application so that
// `docker autobackup` has something meaningful to stop, back up and restart:
//
//	shopd db   --data /data              key-value store over HTTP, one fsynced file per key
//	shopd app  --db http://db:8080       shop API (products, orders) that keeps its state in db
//	shopd web  --app http://app:8080     HTML front page and /api/ proxy to app
//	shopd health URL                     exit 0 if GET URL answers 200 (for healthchecks)
//	shopd get URL                        print the body of GET URL (for debugging)
//
// The image is FROM scratch, so the healthcheck cannot use curl or wget:
// `shopd health` is the probe. All servers shut down cleanly on SIGTERM,
// which keeps `docker compose stop` (and our stop before a snapshot) fast.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const usage = `usage: shopd <command> [flags]

commands:
  db      --listen :8080 --data /data      run the key-value store
  app     --listen :8080 --db URL           run the shop API
  web     --listen :8080 --app URL          run the web front
  health  URL                               exit 0 if GET URL returns 200
  get     URL                               print the body of GET URL
`

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	log.SetPrefix("shopd: ")
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "db":
		err = runDB(args)
	case "app":
		err = runApp(args)
	case "web":
		err = runWeb(args)
	case "health":
		err = runHealth(args)
	case "get":
		err = runGet(args)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "shopd: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		log.Printf("%s: %v", cmd, err)
		os.Exit(1)
	}
}

// serve runs h on addr until SIGTERM or SIGINT, then shuts down gracefully.
func serve(addr string, h http.Handler) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	srv := &http.Server{
		Addr:              addr,
		Handler:           logRequests(h),
		ReadHeaderTimeout: 5 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("listening on %s", addr)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Printf("signal received, shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// logRequests logs every request except health probes, which would drown
// the log at one probe per second.
func logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			log.Printf("%s %s", r.Method, r.URL.Path)
		}
		h.ServeHTTP(w, r)
	})
}

var client = &http.Client{Timeout: 5 * time.Second}

func runHealth(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: shopd health URL")
	}
	resp, err := client.Get(args[0])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", args[0], resp.Status)
	}
	return nil
}

func runGet(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: shopd get URL")
	}
	resp, err := client.Get(args[0])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", args[0], resp.Status)
	}
	return nil
}
