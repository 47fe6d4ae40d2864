package metrics

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads a file the way node_exporter's textfile collector does.
func parse(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return fams
}

// value returns the gauge of name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	if fam.GetType() != dto.MetricType_GAUGE || fam.GetHelp() == "" {
		t.Errorf("%s: type %s, help %q; want a gauge with help", name, fam.GetType(), fam.GetHelp())
	}
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("%s: no sample with labels %v", name, want)
	return 0
}

func TestWriteParses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "autobackup.prom")
	succ := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	s := Snapshot{
		Project: `sh"op\x`, LastRun: succ.Add(time.Hour), LastStatus: "failed",
		Duration: 2500 * time.Millisecond, Downtime: 750 * time.Millisecond,
		LastSuccess: succ, ArchiveBytes: 12345, ServicesDown: 2,
		Volumes: []Volume{{Name: "shop_db", ArchiveBytes: 12000, Bytes: 80000}, {Name: "shop_files", ArchiveBytes: 345, Bytes: 1024}},
	}
	if err := Write(path, s); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o644 {
		t.Errorf("mode %v, want 0644", got)
	}
	fams := parse(t, path)
	p := map[string]string{"project": s.Project}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"autobackup_last_success_timestamp_seconds", p, float64(succ.Unix())},
		{"autobackup_last_run_timestamp_seconds", p, float64(succ.Add(time.Hour).Unix())},
		{"autobackup_last_run_success", p, 0},
		{"autobackup_last_run_status", map[string]string{"project": s.Project, "status": "failed"}, 1},
		{"autobackup_last_run_status", map[string]string{"project": s.Project, "status": "success"}, 0},
		{"autobackup_last_run_duration_seconds", p, 2.5},
		{"autobackup_last_run_downtime_seconds", p, 0.75},
		{"autobackup_services_down", p, 2},
		{"autobackup_last_success_archive_bytes", p, 12345},
		{"autobackup_volume_archive_bytes", map[string]string{"project": s.Project, "volume": "shop_db"}, 12000},
		{"autobackup_volume_bytes", map[string]string{"project": s.Project, "volume": "shop_files"}, 1024},
	}
	for _, tt := range tests {
		if got := value(t, fams, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}

func TestWriteNeverRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.prom")
	if err := Write(path, Snapshot{Project: "p"}); err != nil {
		t.Fatal(err)
	}
	fams := parse(t, path)
	if got := value(t, fams, "autobackup_last_success_timestamp_seconds", map[string]string{"project": "p"}); got != 0 {
		t.Errorf("last success = %v, want 0", got)
	}
	if _, ok := fams["autobackup_volume_bytes"]; ok {
		t.Error("volume metrics written without a successful backup")
	}
}

func TestWriteMissingDir(t *testing.T) {
	err := Write(filepath.Join(t.TempDir(), "nope", "x.prom"), Snapshot{Project: "p"})
	if err == nil {
		t.Fatal("write into a missing directory: no error")
	}
}
