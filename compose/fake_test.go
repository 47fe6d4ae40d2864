package compose_test

import (
	"fmt"
	"slices"
	"sync"

	"github.com/docker-autobackup/docker-autobackup/engine"
	"github.com/docker-autobackup/docker-autobackup/engine/enginetest"
	"github.com/docker-autobackup/docker-autobackup/progress"
)

// recorder collects progress events.
type recorder struct {
	mu     sync.Mutex
	events []progressEvent
}

type progressEvent struct {
	Kind, Service, Container, Message string
}

func (r *recorder) Events() []progressEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// kinds returns the events of kind k.
func (r *recorder) kinds(k string) []progressEvent {
	var out []progressEvent
	for _, e := range r.Events() {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) Report(e progress.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, progressEvent{Kind: string(e.Kind), Service: e.Service, Container: e.Container, Message: e.Message})
}

// ctr returns a fake container of service svc, number n, in state
// ("running", "exited", …). Running containers start out healthy where
// they are given a healthcheck.
func ctr(svc string, n int, state string) *enginetest.Container {
	id := fmt.Sprintf("%s-%d", svc, n)
	return &enginetest.Container{Container: engine.Container{
		ID: id, Name: "proj-" + id, Service: svc, Number: n, State: state,
	}}
}
