package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nicholas-fedor/shoutrrr/pkg/router"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"
)

// DefaultTimeout bounds one notification or ping when the caller gives none.
const DefaultTimeout = 10 * time.Second

// Result is the outcome of one delivery to one target.
type Result struct {
	Target string // the URL, redacted
	Err    error  // nil when delivered; its text is redacted
}

// Validate checks that u is a notification URL shoutrrr knows, without
// sending anything. The error does not contain u's secrets.
func Validate(u string) error {
	r := NewRedactor(u)
	if strings.TrimSpace(u) == "" {
		return errors.New("empty URL")
	}
	if _, err := (&router.ServiceRouter{}).Locate(u); err != nil {
		return errors.New(r.Scrub(err.Error()))
	}
	return nil
}

// Send delivers e to every URL at once and waits for them all, each
// bounded by timeout (DefaultTimeout when 0) and by ctx. A target that hangs
// is reported as timed out and abandoned; it never holds the caller longer.
func Send(ctx context.Context, urls []string, e Event, timeout time.Duration) []Result {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	results := make([]Result, len(urls))
	done := make(chan int, len(urls))
	for i, u := range urls {
		results[i].Target = Redact(u)
		go func() {
			err := sendOne(u, e, timeout)
			if err != nil {
				results[i].Err = errors.New(NewRedactor(u).Scrub(err.Error()))
			}
			done <- i
		}()
	}
	// One grace second over the per-target timeout: shoutrrr enforces it
	// itself; this is the backstop for a service that ignores it.
	deadline := time.NewTimer(timeout + time.Second)
	defer deadline.Stop()
	pending := make(map[int]bool, len(urls))
	for i := range urls {
		pending[i] = true
	}
	for len(pending) > 0 {
		select {
		case i := <-done:
			delete(pending, i)
		case <-deadline.C:
			return timedOut(results, pending, timeout)
		case <-ctx.Done():
			return timedOut(results, pending, timeout)
		}
	}
	return results
}

func timedOut(results []Result, pending map[int]bool, timeout time.Duration) []Result {
	out := make([]Result, len(results))
	for i := range results {
		// The goroutine may still write results[i]: copy only finished ones.
		if pending[i] {
			out[i] = Result{Target: results[i].Target, Err: fmt.Errorf("notify: no answer within %s", timeout)}
			continue
		}
		out[i] = results[i]
	}
	return out
}

func sendOne(u string, e Event, timeout time.Duration) error {
	client := &http.Client{Timeout: timeout}
	r, err := router.NewWithOptions(nil, types.SenderOptions{HTTPClient: client, Timeout: timeout}, u)
	if err != nil {
		return err
	}
	// Only generic webhooks take fields of their own (they post them as
	// JSON); other services refuse parameters they do not know.
	params := types.Params{types.TitleKey: e.Title()}
	if scheme, _, _ := strings.Cut(u, "://"); strings.HasPrefix(strings.ToLower(scheme), "generic") {
		params = types.Params(e.Params())
	}
	for _, err := range r.Send(e.Text(), &params) {
		if err != nil {
			return err
		}
	}
	return nil
}
