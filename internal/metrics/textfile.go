package metrics

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/atomicfile"
)

// Snapshot is what the file reports about one project after a run.
type Snapshot struct {
	Project      string
	LastRun      time.Time // start of the latest run; zero if none
	LastStatus   string    // "success", "failed" or "interrupted"
	Duration     time.Duration
	Downtime     time.Duration
	LastSuccess  time.Time // start of the latest successful backup; zero if none
	ArchiveBytes int64     // total archive size of the latest successful backup
	Volumes      []Volume  // of the latest successful backup
	ServicesDown int       // services not running again after the latest run
}

// Volume is one volume of the latest successful backup.
type Volume struct {
	Name         string
	ArchiveBytes int64 // compressed archive
	Bytes        int64 // uncompressed contents (tar stream)
}

// Statuses the autobackup_last_run_status gauge distinguishes.
var statuses = []string{"success", "failed", "interrupted"}

// Write replaces the file at path with s in the Prometheus text format,
// mode 0644 so that node_exporter can read it.
func Write(path string, s Snapshot) error {
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := io.WriteString(w, Render(s))
		return err
	})
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Render returns s in the Prometheus text exposition format.
func Render(s Snapshot) string {
	var b strings.Builder
	p := `project="` + escape(s.Project) + `"`
	gauge := func(name, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	sample := func(name, labels string, v float64) {
		fmt.Fprintf(&b, "%s{%s} %s\n", name, labels, strconv.FormatFloat(v, 'g', -1, 64))
	}
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.Unix())
	}

	gauge("autobackup_last_success_timestamp_seconds", "Start of the latest successful backup, in seconds since the epoch (0: never).")
	sample("autobackup_last_success_timestamp_seconds", p, unix(s.LastSuccess))
	gauge("autobackup_last_run_timestamp_seconds", "Start of the latest backup run, in seconds since the epoch (0: never).")
	sample("autobackup_last_run_timestamp_seconds", p, unix(s.LastRun))
	gauge("autobackup_last_run_success", "1 if the latest backup run succeeded, else 0.")
	sample("autobackup_last_run_success", p, b2f(s.LastStatus == "success"))
	gauge("autobackup_last_run_status", "The status of the latest backup run: 1 for the label that applies.")
	for _, st := range statuses {
		sample("autobackup_last_run_status", p+`,status="`+st+`"`, b2f(s.LastStatus == st))
	}
	gauge("autobackup_last_run_duration_seconds", "Wall-clock time of the latest backup run.")
	sample("autobackup_last_run_duration_seconds", p, s.Duration.Seconds())
	gauge("autobackup_last_run_downtime_seconds", "How long services were stopped during the latest backup run.")
	sample("autobackup_last_run_downtime_seconds", p, s.Downtime.Seconds())
	gauge("autobackup_services_down", "Services not running again after the latest run (0 when all came back).")
	sample("autobackup_services_down", p, float64(s.ServicesDown))
	gauge("autobackup_last_success_archive_bytes", "Total archive size of the latest successful backup.")
	sample("autobackup_last_success_archive_bytes", p, float64(s.ArchiveBytes))
	if len(s.Volumes) > 0 {
		gauge("autobackup_volume_archive_bytes", "Compressed archive size of each volume in the latest successful backup.")
		for _, v := range s.Volumes {
			sample("autobackup_volume_archive_bytes", p+`,volume="`+escape(v.Name)+`"`, float64(v.ArchiveBytes))
		}
		gauge("autobackup_volume_bytes", "Uncompressed size of each volume's contents in the latest successful backup.")
		for _, v := range s.Volumes {
			sample("autobackup_volume_bytes", p+`,volume="`+escape(v.Name)+`"`, float64(v.Bytes))
		}
	}
	return b.String()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// escape escapes a label value as the text format requires.
func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
