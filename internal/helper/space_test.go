package helper

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
)

func TestMeasureSpace(t *testing.T) {
	src, stage := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), bytes.Repeat([]byte("x"), 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := SpaceMain([]string{src, stage}, &out); err != nil {
		t.Fatal(err)
	}
	var sp protocol.SpaceResult
	if err := json.Unmarshal(out.Bytes(), &sp); err != nil {
		t.Fatal(err)
	}
	if sp.SrcBytes < 1<<20 || sp.FreeBytes <= 0 || sp.StageBytes >= sp.SrcBytes {
		t.Errorf("space = %+v", sp)
	}
	if got, want := (protocol.SpaceResult{SrcBytes: 100, StageBytes: 40}).Need(), int64(65); got != want {
		t.Errorf("Need = %d, want %d", got, want)
	}
	if got, want := (protocol.SpaceResult{SrcBytes: 100, StageBytes: 400}).Need(), int64(5); got != want {
		t.Errorf("Need with a larger stage = %d, want %d", got, want)
	}
	if err := SpaceMain([]string{src}, &out); err == nil {
		t.Error("one argument accepted")
	}
}
