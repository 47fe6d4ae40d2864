// Package e2e holds the end-to-end tests of docker autobackup: they drive the
// real Docker engine and real Compose v2 and call `docker autobackup …` the
// way a user does, with the freshly built plugin installed into a temporary
// DOCKER_CONFIG/cli-plugins. Nothing in your own ~/.docker is touched.
//
// Run them with `make test` (it builds Compose v2 and the test images first),
// or `go test ./e2e/` once those exist. Without a Docker engine the tests
// skip, unless CI=true, where they fail.
//
// # Writing a test
//
// Put the fixture in testdata/<TestName>/compose.yaml (plus any file it
// needs; the whole directory is copied), then:
//
//	func TestStopOrder(t *testing.T) {
//		p := NewProject(t)                 // copy of testdata/TestStopOrder, unique project name, cleaned up
//		p.Compose(t, "up", "-d", "--wait")
//		ev := p.StartEvents(t)
//		r := p.Autobackup(t, "run")
//		if r.Code != 0 {
//			t.Fatalf("docker autobackup run: %v", r)
//		}
//		evs := ev.Stop()
//		if !Before(evs, "app", "stop", "db", "stop") { … }
//	}
//
// Fixtures use only locally built images (there is no registry):
// autobackup-test/busybox:latest (static busybox; the harness builds it when
// missing). Give every service `pull_policy: never`, and do not set a
// top-level `name:`: the harness picks the project name. A busybox `sleep`
// as PID 1 ignores SIGTERM, which makes every stop wait for the timeout; use
//
//	command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
//
// On Engine 20.10 the first health probe runs only after `interval`: use
// `interval: 1s` in fixtures.
//
// Observe the engine (docker events, docker inspect), not the plugin's own
// output, when checking what happened.
package e2e
