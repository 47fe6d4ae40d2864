package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestStopSeconds(t *testing.T) {
	for line, want := range map[string]float64{
		"stopped  db (1.161s)":                     1.161,
		"stopped  db (865ms, docker compose stop)": 0.865,
		"stopped  db":                              -1,
		"":                                         -1,
		"stopped  db (soon)":                       -1,
	} {
		got, ok := stopSeconds(line)
		if want < 0 {
			if ok {
				t.Errorf("stopSeconds(%q) = %v, want none", line, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("stopSeconds(%q) = %v, %v, want %v", line, got, ok, want)
		}
	}
}

func TestPairedDiff(t *testing.T) {
	k := scenarioKey{"xfs", 300}
	rs := []result{
		{FS: "xfs", Scale: 300, Method: "floor", Rep: 1, MaxGapS: 2.0},
		{FS: "xfs", Scale: 300, Method: "staged-next", Rep: 1, MaxGapS: 2.1},
		{FS: "xfs", Scale: 300, Method: "floor", Rep: 2, MaxGapS: 3.0},
		{FS: "xfs", Scale: 300, Method: "staged-next", Rep: 2, MaxGapS: 3.5},
		{FS: "xfs", Scale: 300, Method: "floor", Rep: 3, MaxGapS: 1.0},
		{FS: "xfs", Scale: 300, Method: "staged-next", Rep: 3, MaxGapS: 1.25},
		{FS: "xfs", Scale: 300, Method: "staged-next", Rep: 4, MaxGapS: 9}, // no floor 4: not a pair
		{FS: "ext4", Scale: 300, Method: "floor", Rep: 1, MaxGapS: 0.1},    // another scenario
	}
	d, n := pairedDiff(rs, k, "staged-next", "floor")
	if n != 3 || d < 0.249 || d > 0.251 {
		t.Fatalf("pairedDiff = %v over %d pairs, want 0.25 over 3", d, n)
	}
	// Medians of the groups would say 2.8 − 2.0 = +0.8 (not met): the pairs see
	// through the drift between runs.
	var b bytes.Buffer
	render(&b, rs, nil, "")
	if !strings.Contains(b.String(), "paired (3): +0.25 s") || !strings.Contains(b.String(), "paired **met**") {
		t.Fatalf("report lacks the paired verdict:\n%s", b.String())
	}
}
