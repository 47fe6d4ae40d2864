package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Signals a dead man's switch receives.
const (
	PingStart   = "start"
	PingSuccess = "success"
	PingFail    = "fail"
)

// MaxPingBody caps the output sent with a ping, as healthchecks.io does.
const MaxPingBody = 100_000

// PingRequest returns the request that signals kind to the check at base:
//
//   - healthchecks.io and compatible servers (the default): base/start,
//     base, base/fail; the body (the run's last lines of output) is POSTed.
//   - Uptime Kuma push URLs (…/api/push/TOKEN): ?status=up or down with
//     msg; a start has no equivalent and returns nil.
//   - Cronitor telemetry URLs (cronitor.link): ?state=run, complete or fail
//     with msg.
//
// A body over MaxPingBody keeps its last MaxPingBody bytes: the end of a
// log says why it failed.
func PingRequest(ctx context.Context, base, kind, body string) (*http.Request, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("ping_url: want an http or https URL")
	}
	if len(body) > MaxPingBody {
		body = body[len(body)-MaxPingBody:]
	}
	q := u.Query()
	switch {
	case strings.Contains(u.Path, "/api/push/"):
		if kind == PingStart {
			return nil, nil
		}
		q.Set("status", map[bool]string{true: "up", false: "down"}[kind == PingSuccess])
		q.Set("msg", shortMsg(body, kind))
		u.RawQuery = q.Encode()
		return http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	case strings.HasSuffix(u.Hostname(), "cronitor.link") || strings.HasSuffix(u.Hostname(), "cronitor.io"):
		q.Set("state", map[string]string{PingStart: "run", PingSuccess: "complete", PingFail: "fail"}[kind])
		if kind != PingStart {
			q.Set("msg", shortMsg(body, kind))
		}
		u.RawQuery = q.Encode()
		return http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	}
	switch kind {
	case PingStart:
		u.Path = strings.TrimSuffix(u.Path, "/") + "/start"
	case PingFail:
		u.Path = strings.TrimSuffix(u.Path, "/") + "/fail"
	}
	u.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	return req, nil
}

// shortMsg is the one line Uptime Kuma and Cronitor show: the last
// non-empty line of the body.
func shortMsg(body, kind string) string {
	lines := strings.Split(strings.TrimSpace(body), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		last = kind
	}
	if len(last) > 200 {
		last = last[:200]
	}
	return last
}

// Ping signals kind to the check at base, bounded by timeout
// (DefaultTimeout when 0). Any answer below 400 counts as delivered. The
// error does not contain base's secrets.
func Ping(ctx context.Context, base, kind, body string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := NewRedactor(base)
	req, err := PingRequest(ctx, base, kind, body)
	if err != nil {
		return errors.New(r.Scrub(err.Error()))
	}
	if req == nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("ping %s: no answer within %s", kind, timeout)
		}
		return fmt.Errorf("ping %s: %s", kind, r.Scrub(err.Error()))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 400 {
		return fmt.Errorf("ping %s: %s answered %s", kind, r.Scrub(req.URL.Redacted()), resp.Status)
	}
	return nil
}
