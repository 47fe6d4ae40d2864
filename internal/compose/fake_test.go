package compose_test

import (
	"fmt"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/enginetest"
)

// ctr returns a fake container of service svc, number n, in state
// ("running", "exited", …). Running containers start out healthy where
// they are given a healthcheck.
func ctr(svc string, n int, state string) *enginetest.Container {
	id := fmt.Sprintf("%s-%d", svc, n)
	return &enginetest.Container{Container: engine.Container{
		ID: id, Name: "proj-" + id, Service: svc, Number: n, State: state,
	}}
}
