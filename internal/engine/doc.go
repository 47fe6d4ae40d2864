// Package engine is the model of the Docker engine this program drives:
// the types of its calls, the labels we put on what we create, the
// sentinel errors, the Engine interface with each call's contract, and
// WithRetry, the one retry wrapper over it. The implementation on the
// Docker API is package engine/docker; the fake every test uses, and the
// conformance suite that holds both to the same contract, are in
// engine/enginetest.
package engine
