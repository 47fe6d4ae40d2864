package docker

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// execAPI answers the three calls of an exec; serve writes the command's
// multiplexed output on the server side of the attach connection.
type execAPI struct {
	client.APIClient
	serve func(stdout, stderr func(string), conn net.Conn)
	code  int
}

func (a *execAPI) ContainerExecCreate(ctx context.Context, id string, o container.ExecOptions) (container.ExecCreateResponse, error) {
	return container.ExecCreateResponse{ID: "exec-1"}, nil
}

func (a *execAPI) ContainerExecAttach(ctx context.Context, id string, o container.ExecAttachOptions) (types.HijackedResponse, error) {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		out := stdcopy.NewStdWriter(server, stdcopy.Stdout)
		errw := stdcopy.NewStdWriter(server, stdcopy.Stderr)
		a.serve(func(s string) { _, _ = out.Write([]byte(s)) }, func(s string) { _, _ = errw.Write([]byte(s)) }, server)
	}()
	return types.NewHijackedResponse(client, "application/vnd.docker.multiplexed-stream"), nil
}

func (a *execAPI) ContainerExecInspect(ctx context.Context, id string) (container.ExecInspect, error) {
	return container.ExecInspect{ExitCode: a.code}, nil
}

// signalWriter collects what it is given and says when it got something.
type signalWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	got chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	select {
	case w.got <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestExecStreamsStdout(t *testing.T) {
	w := &signalWriter{got: make(chan struct{}, 1)}
	api := &execAPI{code: 7, serve: func(stdout, stderr func(string), _ net.Conn) {
		stdout("one\n")
		// The rest only once the first line was seen: it must arrive
		// while the command runs, not when it ends.
		select {
		case <-w.got:
		case <-time.After(5 * time.Second):
			stdout("TIMEOUT\n")
		}
		stderr("oops\n")
		stdout("two\n")
	}}
	d := New(api, "test")
	code, out, err := d.Exec(t.Context(), "c1", engine.ExecSpec{Cmd: []string{"x"}, Output: w})
	if err != nil || code != 7 {
		t.Fatalf("Exec = %d, %q, %v; want 7", code, out, err)
	}
	if got := w.String(); got != "one\ntwo\n" {
		t.Errorf("streamed stdout %q, want one and two", got)
	}
	if out != "oops" {
		t.Errorf("returned output %q, want stderr only", out)
	}

	// Without Output both streams are in the returned tail.
	api.serve = func(stdout, stderr func(string), _ net.Conn) { stdout("one\n"); stderr("oops\n") }
	_, out, err = d.Exec(t.Context(), "c1", engine.ExecSpec{Cmd: []string{"x"}})
	if err != nil || out != "one\noops" {
		t.Errorf("Exec without Output = %q, %v; want both streams", out, err)
	}
}

func TestExecCancelledWritesNothingAfterReturn(t *testing.T) {
	w := &signalWriter{got: make(chan struct{}, 1)}
	release := make(chan struct{})
	api := &execAPI{serve: func(stdout, stderr func(string), conn net.Conn) {
		stdout("one\n")
		<-release
		stdout("late\n")
	}}
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-w.got; cancel() }()
	_, _, err := New(api, "test").Exec(ctx, "c1", engine.ExecSpec{Cmd: []string{"x"}, Output: w})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Exec = %v, want cancelled", err)
	}
	seen := w.String()
	close(release)
	time.Sleep(50 * time.Millisecond)
	if got := w.String(); got != seen || got != "one\n" {
		t.Errorf("output %q after return (%q at return), want only the first line", got, seen)
	}
}
