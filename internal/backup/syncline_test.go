package backup

import (
	"strings"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
)

func TestSyncLine(t *testing.T) {
	for _, c := range []struct {
		st   protocol.SyncStats
		want string
	}{
		{protocol.SyncStats{Copied: 2, CopiedBytes: 10, Deleted: 1}, "synced   v: 2 changed file(s), 10 bytes, 1 deleted, in 0s"},
		{protocol.SyncStats{Patched: 3, PatchedBytes: 8192, ComparedBytes: 1 << 30}, "3 patched in place (8.2 kB written of 1.1 GB compared)"},
		{protocol.SyncStats{Clone: true, Patched: 3}, "3 updated in place by reflink (no data copied)"},
	} {
		if got := syncLine("synced  ", "v", c.st); !strings.Contains(got, c.want) {
			t.Errorf("syncLine(%+v) = %q, want it to contain %q", c.st, got, c.want)
		}
	}
}
