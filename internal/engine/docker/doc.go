// Package docker implements engine.Engine on top of the Docker engine API
// client that the docker CLI plugin framework hands us (so contexts,
// DOCKER_HOST and TLS settings are the user's). It negotiates the API
// version and uses nothing newer than API 1.41, so Docker 20.10 works as
// well as current engines. Its calls do not retry: wrap it with
// engine.WithRetry(New(…), engine.DefaultRetry(Transient)).
package docker
