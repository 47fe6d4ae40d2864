package progress

import (
	"sync"
	"testing"
)

func TestRecorder(t *testing.T) {
	var r Recorder
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { Send(&r, Event{Kind: Info, Message: "x"}) })
	}
	wg.Wait()
	Send(&r, Event{Kind: Warning, Message: "w"})
	if got := len(r.Events()); got != 51 {
		t.Errorf("%d events, want 51", got)
	}
	if w := r.Of(Warning); len(w) != 1 || w[0].Message != "w" {
		t.Errorf("warnings %+v, want the one", w)
	}
	Send(nil, Event{Kind: Info}) // a nil reporter takes nothing
}
