// Package progress defines how library packages report what they do.
// Libraries never print: they send Events to a Reporter and the plugin
// package decides how to render them (plain lines, a live TTY display,
// JSON, or nothing).
package progress

import (
	"slices"
	"sync"
	"time"
)

// Kind says what an Event is about.
type Kind string

// The kinds of events the library packages report.
const (
	Phase          Kind = "phase"           // a new phase starts (Message names it)
	ServiceStop    Kind = "service-stop"    // a service is about to be stopped
	ServiceStopped Kind = "service-stopped" // a service's containers are stopped
	ServiceStart   Kind = "service-start"   // a service is about to be started
	ServiceStarted Kind = "service-started" // a service's containers are started
	ServiceHealthy Kind = "service-healthy" // a service's containers are running (and healthy where they have a healthcheck)
	ServiceSkipped Kind = "service-skipped" // a service was left alone (Message says why)
	VolumeStart    Kind = "volume-start"    // a volume copy starts (Total is the expected size, 0 if unknown)
	VolumeBytes    Kind = "volume-bytes"    // progress of a volume copy (Bytes so far)
	VolumeDone     Kind = "volume-done"     // a volume copy finished (Bytes is the total)
	Warning        Kind = "warning"         // something went wrong but the work continues
	Info           Kind = "info"            // anything else worth a line
)

// The volume events (VolumeStart, VolumeBytes, VolumeDone) are
// about whatever the current Phase does with a volume's data: copy it
// (snapshot, archive), or "verify", "upload", "download", "restore" it.

// Event is one thing that happened.
type Event struct {
	Kind      Kind
	Time      time.Time
	Service   string
	Container string
	Volume    string
	Message   string
	Bytes     int64
	Total     int64
	// Archive says Bytes and Total of a VolumeBytes event count the
	// compressed archive written so far (what a helper writing next to
	// the data lets us see), not the volume's bytes read.
	Archive bool
}

// Reporter receives events. Implementations must be safe for concurrent
// use: services without a dependency between them are handled in parallel.
type Reporter interface {
	Report(Event)
}

// Func adapts a function to a Reporter.
type Func func(Event)

// Report calls f(e).
func (f Func) Report(e Event) { f(e) }

// Discard is a Reporter that drops every event.
var Discard Reporter = Func(func(Event) {})

// Send reports e on r, filling in the time; r may be nil.
func Send(r Reporter, e Event) {
	if r == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.Report(e)
}

// Recorder is a Reporter that keeps every event it gets, for tests and
// for callers that look at the events afterwards. Safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *Recorder) Report(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns the events so far, in order.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Of returns the events of one kind, in order.
func (r *Recorder) Of(kind Kind) []Event {
	var out []Event
	for _, e := range r.Events() {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}
