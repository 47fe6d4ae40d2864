package main

import "testing"

func TestDowntime(t *testing.T) {
	ev := func(c, action string, at int64) event { return event{Container: c, Action: action, TimeNano: at} }
	tests := []struct {
		name         string
		evs          []event
		health       map[string]bool
		want         window
		wantComplete bool
	}{
		{name: "nothing stopped", evs: []event{ev("a", "start", 1)}, wantComplete: true},
		{
			name:   "two services with healthchecks, back in order",
			health: map[string]bool{"app": true, "db": true},
			evs: []event{
				ev("app", "kill", 10), ev("app", "die", 11), ev("app", "stop", 12),
				ev("db", "die", 20), ev("db", "stop", 21),
				ev("db", "start", 50), ev("db", healthy, 60),
				ev("app", "start", 61), ev("app", healthy, 70),
			},
			want:         window{FirstDown: 11, LastDown: 21, FirstUp: 50, End: 70, Down: 2},
			wantComplete: true,
		},
		{
			name:   "start without healthcheck counts as back",
			health: map[string]bool{"db": true},
			evs: []event{
				ev("app", "die", 10), ev("db", "die", 20),
				ev("db", "start", 30), ev("db", healthy, 40), ev("app", "start", 41),
			},
			want:         window{FirstDown: 10, LastDown: 20, FirstUp: 30, End: 41, Down: 2},
			wantComplete: true,
		},
		{
			name:   "healthy before the stop does not count",
			health: map[string]bool{"db": true},
			evs:    []event{ev("db", healthy, 5), ev("db", "die", 10), ev("db", "start", 20)},
			want:   window{FirstDown: 10, LastDown: 10, FirstUp: 20, Down: 1},
		},
		{
			name:   "unordered input",
			health: map[string]bool{},
			evs:    []event{ev("db", "start", 20), ev("db", "die", 10)},
			want:   window{FirstDown: 10, LastDown: 10, FirstUp: 20, End: 20, Down: 1}, wantComplete: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, complete := downtime(tt.evs, tt.health)
			if got != tt.want || complete != tt.wantComplete {
				t.Errorf("downtime() = %+v, %v; want %+v, %v", got, complete, tt.want, tt.wantComplete)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
