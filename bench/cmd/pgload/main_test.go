package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestGaps(t *testing.T) {
	s := int64(1e9)
	ts := []int64{1 * s, 2 * s, 3 * s, 7 * s, 8 * s, 10 * s, 10*s + s/2}
	tests := []struct {
		name             string
		from, to         int64
		wantGap          float64
		wantStart        int64
		wantUpTo, wantIn int
		wantErr          error
	}{
		{"the outage inside", 2*s + s/2, 7*s + s/2, 4, 3 * s, 3, 2, nil},
		{"starts from the last commit before", 3*s + s/2, 4 * s, 4, 3 * s, 3, 0, nil},
		{"ends at the first commit after", 8*s + s/2, 9 * s, 2, 8 * s, 5, 0, nil},
		{"window on a commit", 8 * s, 8 * s, 2, 8 * s, 5, 0, nil},
		{"nothing before", 0, 2 * s, 0, 0, 0, 0, errNoCommitBefore},
		{"nothing after", 9 * s, 11 * s, 0, 0, 0, 0, errNoCommitAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gaps(ts, tt.from, tt.to)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.MaxGapS != tt.wantGap || got.GapStartNS != tt.wantStart || got.CommitsUpToGap != tt.wantUpTo || got.CommitsInWindow != tt.wantIn {
				t.Errorf("got gap %v from %d, %d up to it, %d inside; want %v from %d, %d, %d",
					got.MaxGapS, got.GapStartNS, got.CommitsUpToGap, got.CommitsInWindow, tt.wantGap, tt.wantStart, tt.wantUpTo, tt.wantIn)
			}
		})
	}
}

func TestReadCommitsIgnoresPartialLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte("3 0\n1 1\n2 0\n99"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readCommits(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{1, 2, 3}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("got %v, want %v", got, want)
	}
}
