package iocount

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestCount(t *testing.T) {
	var reports []int64
	r := &Reader{R: strings.NewReader(strings.Repeat("x", 10000)), Report: func(n int64) { reports = append(reports, n) }, Every: time.Hour}
	var buf bytes.Buffer
	w := &Writer{W: &buf}
	if _, err := io.CopyBuffer(w, r, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	r.Flush()
	if r.N != 10000 || w.N != 10000 || buf.Len() != 10000 {
		t.Errorf("read %d, wrote %d (%d in the buffer), want 10000", r.N, w.N, buf.Len())
	}
	// The first read reports (nothing reported before), then an hour must
	// pass; Flush reports the total.
	if len(reports) != 2 || reports[0] != 1000 || reports[1] != 10000 {
		t.Errorf("reports %v, want [1000 10000]", reports)
	}
}
