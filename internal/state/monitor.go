package state

import (
	"slices"
	"time"
)

// Kinds of delivery, in Delivery.Kind.
const (
	DeliveryNotify  = "notify"
	DeliveryPing    = "ping"
	DeliveryMetrics = "metrics"
)

// Monitor is the [monitor] table: what monitoring needs beyond the history
// of runs. It is written by the run that learns it and read by `status`
// and `check`.
type Monitor struct {
	// ServicesDown lists the services the latest backup or restore could
	// not bring back; empty once a later run brought them back.
	ServicesDown   []string  `toml:"services_down,omitempty"`
	ServicesDownAt time.Time `toml:"services_down_at,omitempty"`
	ServicesDownBy string    `toml:"services_down_by,omitempty"` // the backup or restore ID
	// Pending are notifications, pings and metrics writes that failed;
	// the next run retries them.
	Pending []Delivery `toml:"pending,omitempty"`
}

// Delivery is one failed delivery of a run's outcome.
type Delivery struct {
	Kind     string    `toml:"kind" json:"kind"`     // DeliveryNotify, DeliveryPing or DeliveryMetrics
	Target   string    `toml:"target" json:"target"` // the URL, redacted, or the metrics file
	Event    string    `toml:"event" json:"event"`   // the backup or restore ID the delivery was about
	Time     time.Time `toml:"time" json:"time"`     // of the latest failed attempt
	Attempts int       `toml:"attempts" json:"attempts"`
	Error    string    `toml:"error" json:"error"` // redacted
}

// SetServicesDown records that services did not come back after the run
// id; an empty list records that everything is back.
func (f *File) SetServicesDown(id string, at time.Time, services []string) {
	if len(services) == 0 {
		f.Monitor.ServicesDown, f.Monitor.ServicesDownAt, f.Monitor.ServicesDownBy = nil, time.Time{}, ""
		return
	}
	f.Monitor.ServicesDown = slices.Clone(services)
	f.Monitor.ServicesDownAt = roundTime(at)
	f.Monitor.ServicesDownBy = id
}

// RecordDelivery records the failure of d, counting attempts: a failure of
// the same kind, target and event as a pending one replaces it.
func (f *File) RecordDelivery(d Delivery) {
	d.Time = roundTime(d.Time)
	if d.Attempts < 1 {
		d.Attempts = 1
	}
	for i, p := range f.Monitor.Pending {
		if p.Kind == d.Kind && p.Target == d.Target && p.Event == d.Event {
			d.Attempts = max(d.Attempts, p.Attempts+1)
			f.Monitor.Pending[i] = d
			return
		}
	}
	f.Monitor.Pending = append(f.Monitor.Pending, d)
	if n := len(f.Monitor.Pending) - maxPending; n > 0 {
		f.Monitor.Pending = slices.Delete(f.Monitor.Pending, 0, n)
	}
}

// ClearDelivery removes the pending deliveries of kind to target about
// event, or about any event when event is "" (a ping that went through
// supersedes the failed ones before it).
func (f *File) ClearDelivery(kind, target, event string) {
	f.Monitor.Pending = slices.DeleteFunc(f.Monitor.Pending, func(p Delivery) bool {
		return p.Kind == kind && p.Target == target && (event == "" || p.Event == event)
	})
	if len(f.Monitor.Pending) == 0 {
		f.Monitor.Pending = nil
	}
}

// maxPending bounds the failed deliveries kept: an endpoint that is gone
// for good must not grow the file without end.
const maxPending = 50

// FindRestore returns the newest restore record with id.
func (f *File) FindRestore(id string) (*Restore, bool) {
	for i := len(f.Restores) - 1; i >= 0; i-- {
		if f.Restores[i].ID == id {
			return &f.Restores[i], true
		}
	}
	return nil, false
}

func (m Monitor) normalized() Monitor {
	m.ServicesDownAt = utc(m.ServicesDownAt)
	m.Pending = slices.Clone(m.Pending)
	for i := range m.Pending {
		m.Pending[i].Time = utc(m.Pending[i].Time)
	}
	return m
}

// KeepDeliveries drops the pending deliveries for which keep is false,
// such as those to targets no longer configured.
func (f *File) KeepDeliveries(keep func(Delivery) bool) {
	f.Monitor.Pending = slices.DeleteFunc(f.Monitor.Pending, func(p Delivery) bool { return !keep(p) })
	if len(f.Monitor.Pending) == 0 {
		f.Monitor.Pending = nil
	}
}
