// Package enginetest holds the one fake engine every package's tests use
// (Fake: simulated containers, volumes and helpers, every call recorded,
// each method replaceable through a …Fn field) and the conformance suite
// (Run) that holds the fake and the real engine to the same contract, so
// the fake cannot drift from what the engine does. The suite runs against
// the fake in this package's tests and against a real engine in the e2e
// package.
package enginetest
