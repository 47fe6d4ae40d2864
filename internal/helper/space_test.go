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
	if sp.Reflink != preferClone(src, stage) {
		t.Errorf("space = %+v: reflink %v, but copies between the two are reflinks: %v", sp, sp.Reflink, preferClone(src, stage))
	}
	if err := SpaceMain([]string{src}, &out); err == nil {
		t.Error("one argument accepted")
	}
}

// TestMeasureSpaceReflink: on xfs, a staging copy beside the source is
// known to cost no blocks up front.
func TestMeasureSpaceReflink(t *testing.T) {
	dir := xfsDir(t)
	src, stage := filepath.Join(dir, "src"), filepath.Join(dir, "stage")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.Mkdir(stage, 0o755))
	writeFile(t, filepath.Join(src, "f"), bytes.Repeat([]byte("x"), 4<<20), 0o600)
	sp, err := MeasureSpace(src, stage)
	if err != nil {
		t.Fatal(err)
	}
	if !sp.Reflink || sp.Need() != sp.SrcBytes/20 {
		t.Errorf("space on xfs = %+v, need %d: want reflink and only the 5%% margin", sp, sp.Need())
	}
}
