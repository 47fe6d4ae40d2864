package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
)

// record is one line of the results file bench/run.sh writes: a measure
// result plus what the script knows (size, method, repetition, sizes).
type record struct {
	SizeGB       float64 `json:"size_gb"`
	Method       string  `json:"method"`
	Rep          int     `json:"rep"`
	WallS        float64 `json:"wall_s"`
	DowntimeS    float64 `json:"downtime_s"`
	StoppingS    float64 `json:"stopping_s"`
	StoppedS     float64 `json:"stopped_s"`
	StartingS    float64 `json:"starting_s"`
	Exit         int     `json:"exit"`
	ArchiveBytes int64   `json:"archive_bytes"`
	DataBytes    int64   `json:"data_bytes"`
	Files        int64   `json:"files"`
	SmallFiles   int64   `json:"small_files"`
	OK           *bool   `json:"ok,omitempty"`
	Note         string  `json:"note,omitempty"`
}

// Methods in table order, with their labels.
var methods = []struct{ key, label string }{
	{"floor", "floor: `docker compose stop` + `start` (+ healthy)"},
	{"stream", "autobackup `stream` (full copy, services stopped; a helper packs next to the data)"},
	{"stream-api", "autobackup `stream` through the engine's API (`DOCKER_AUTOBACKUP_DIRECT=0`, as for a remote engine)"},
	{"offen", "peer: offen/docker-volume-backup v2.48.2, zstd (stops, tars, restarts all at once)"},
	{"manual", "manual: stop, `docker run … tar czf -` over attach, start"},
	{"staged-1", "autobackup `staged`, 1 % of files changed"},
	{"staged-10", "autobackup `staged`, 10 % of files changed"},
}

type results struct {
	recs  []record
	sizes []float64
}

func (r *results) values(size float64, method string, f func(record) float64) []float64 {
	var v []float64
	for _, rec := range r.recs {
		if rec.SizeGB == size && rec.Method == method {
			v = append(v, f(rec))
		}
	}
	return v
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func (r *results) med(size float64, method string, f func(record) float64) float64 {
	return median(r.values(size, method, f))
}

func (r *results) first(size float64, method string) (record, bool) {
	for _, rec := range r.recs {
		if rec.SizeGB == size && rec.Method == method {
			return rec, true
		}
	}
	return record{}, false
}

var (
	wall     = func(r record) float64 { return r.WallS }
	down     = func(r record) float64 { return r.DowntimeS }
	stopping = func(r record) float64 { return r.StoppingS }
	stopped  = func(r record) float64 { return r.StoppedS }
	starting = func(r record) float64 { return r.StartingS }
	archived = func(r record) float64 { return float64(r.ArchiveBytes) }
)

func s(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func mb(v float64) string {
	if math.IsNaN(v) || v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MB", v/1e6)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func verdict(ok bool, v float64) string {
	switch {
	case math.IsNaN(v):
		return "**not measured**"
	case ok:
		return "**met**"
	default:
		return "**not met**"
	}
}

func sizeName(gb float64) string { return fmt.Sprintf("%g GB", gb) }

func readResults(path string) (*results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := &results{}
	seen := map[float64]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var rec record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		r.recs = append(r.recs, rec)
		if !seen[rec.SizeGB] {
			seen[rec.SizeGB] = true
			r.sizes = append(r.sizes, rec.SizeGB)
		}
	}
	sort.Float64s(r.sizes)
	return r, sc.Err()
}

type metaFlags []string

func (m *metaFlags) String() string     { return strings.Join(*m, ",") }
func (m *metaFlags) Set(v string) error { *m = append(*m, v); return nil }

func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	path := fs.String("results", "", "JSON lines written by bench/run.sh")
	var meta, logs metaFlags
	fs.Var(&meta, "meta", "key=value shown in the header (repeatable, in order)")
	fs.Var(&logs, "log", "title=file: a file (e.g. the plugin's stderr) shown verbatim (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := readResults(*path)
	if err != nil {
		return err
	}
	return writeReport(os.Stdout, r, meta, logs)
}

func writeReport(w io.Writer, r *results, meta, logs []string) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("## Results\n\n")
	for _, m := range meta {
		k, v, _ := strings.Cut(m, "=")
		p("- %s: %s\n", k, v)
	}
	p("\nMedians over the repetitions (every single run is listed at the end). Downtime is read from\n")
	p("`docker events` (first container `die`/`stop` → last container `health_status: healthy`), split into\n")
	p("*stopping* (first → last container down), *stopped* (last down → first start: the work done while\n")
	p("everything is stopped) and *starting* (first start → last healthy, includes waiting for the health checks, every `HEALTH_INTERVAL`).\n\n")

	p("### Data sets\n\n| size | files (small text files) | bytes | generated in |\n|---|---|---|---|\n")
	for _, size := range r.sizes {
		if d, ok := r.first(size, "data"); ok {
			p("| %s | %d (%d) | %.0f MB | %s s |\n", sizeName(size), d.Files, d.SmallFiles, float64(d.DataBytes)/1e6, s(d.WallS))
		}
	}

	for _, size := range r.sizes {
		p("\n### %s\n\n", sizeName(size))
		p("| method | downtime (s) | stopping / stopped / starting (s) | wall (s) | archive | restore (s) | runs |\n")
		p("|---|---|---|---|---|---|---|\n")
		for _, m := range methods {
			n := len(r.values(size, m.key, wall))
			if n == 0 {
				continue
			}
			restore := r.med(size, "restore-"+m.key, wall)
			p("| %s | %s | %s / %s / %s | %s | %s | %s | %d |\n", m.label,
				s(r.med(size, m.key, down)), s(r.med(size, m.key, stopping)), s(r.med(size, m.key, stopped)), s(r.med(size, m.key, starting)),
				s(r.med(size, m.key, wall)), mb(r.med(size, m.key, archived)), s(restore), n)
		}
		if n := len(r.values(size, "restore-empty", wall)); n > 0 {
			p("| restore of the first `stream` backup into an empty volume (after `docker compose down -v`) | – | – | %s | – | – | %d |\n", s(r.med(size, "restore-empty", wall)), n)
		}
		for _, m := range []struct{ key, label string }{
			{"read-tar", "read floor: `tar cf - -C /v . > /dev/null` inside a container (time of tar alone; busybox tar may sendfile() into /dev/null, copying nothing)"},
			{"read-tar-pipe", "read floor: `tar cf - -C /v . \\| cat > /dev/null` inside a container (through a pipe)"},
			{"read-cp", "read floor: `docker cp helper:/v/. - > /dev/null` (the engine's archive endpoint)"},
		} {
			if n := len(r.values(size, m.key, wall)); n > 0 {
				p("| %s | – | – | %s | – | – | %d |\n", m.label, s(r.med(size, m.key, wall)), n)
			}
		}
		for _, rec := range r.recs {
			if rec.SizeGB == size && rec.Method == "restore-check" && rec.OK != nil {
				state := "identical to"
				if !*rec.OK {
					state = "**different from**"
				}
				p("\nAfter the last restore, the volume's file contents (SHA-256 of every file) were %s the contents before it.\n", state)
			}
		}
		for _, rec := range r.recs {
			if rec.SizeGB == size && rec.Exit != 0 {
				p("\n**%s run %d exited with code %d.**\n", rec.Method, rec.Rep, rec.Exit)
			}
		}
	}

	p("\n### Ratios and targets\n\n")
	small, large := 1.0, 4.0
	has := func(size float64) bool { return len(r.values(size, "stream", wall)) > 0 }
	if !has(small) && len(r.sizes) > 0 {
		small = r.sizes[0]
	}
	floor := r.med(small, "floor", down)
	st1 := r.med(small, "staged-1", down)
	p("| target (issue) | measured | verdict |\n|---|---|---|\n")
	d := st1 - floor
	p("| %s / 1 %% change: staged downtime within 0.5 s of the floor | %s s − %s s = %s s | %s |\n",
		sizeName(small), s(st1), s(floor), s(d), verdict(d <= 0.5, d))
	if has(large) {
		st4, str4 := r.med(large, "staged-1", down), r.med(large, "stream", down)
		q := ratio(st4, str4)
		p("| %s: staged downtime ≤ 0.15 × stream (full copy) downtime | %s s / %s s = %s | %s |\n",
			sizeName(large), s(st4), s(str4), s(q), verdict(q <= 0.15, q))
		g := ratio(st4, st1)
		p("| staged downtime at %s ≤ 1.5 × at %s | %s s / %s s = %s | %s |\n",
			sizeName(large), sizeName(small), s(st4), s(st1), s(g), verdict(g <= 1.5, g))
	} else {
		p("| 4 GB targets | the 4 GB pass was not run (SIZES) | **not measured** |\n")
	}
	rs, bs := r.med(small, "restore-stream", wall), r.med(small, "stream", wall)
	q := ratio(rs, bs)
	p("| %s: restore ≤ 1.5 × backup of the same volume (restore wall / `stream` backup wall) | %s s / %s s = %s | %s |\n",
		sizeName(small), s(rs), s(bs), s(q), verdict(q <= 1.5, q))
	if re := r.med(small, "restore-empty", wall); !math.IsNaN(re) {
		q := ratio(re, bs)
		p("| %s: the same, restoring into an empty volume | %s s / %s s = %s | %s |\n", sizeName(small), s(re), s(bs), s(q), verdict(q <= 1.5, q))
	}
	for _, size := range r.sizes {
		if len(r.values(size, "offen", wall)) == 0 {
			continue
		}
		ow, sw := r.med(size, "offen", wall), r.med(size, "stream", wall)
		q := ratio(sw, ow)
		p("| %s: `stream` wall time no worse than offen's | %s s / %s s = %s | %s |\n", sizeName(size), s(sw), s(ow), s(q), verdict(q <= 1, q))
		oa, sa := r.med(size, "offen", archived), r.med(size, "stream", archived)
		q = ratio(sa, oa)
		p("| %s: `stream` archive no larger than offen's | %s / %s = %.4f | %s |\n", sizeName(size), mb(sa), mb(oa), q, verdict(q <= 1, q))
	}

	p("\n| ratio | ")
	for _, size := range r.sizes {
		p("%s | ", sizeName(size))
	}
	p("\n|---|")
	for range r.sizes {
		p("---|")
	}
	p("\n")
	row := func(label string, f func(size float64) float64) {
		p("| %s | ", label)
		for _, size := range r.sizes {
			p("%s | ", s(f(size)))
		}
		p("\n")
	}
	row("staged 1 % downtime / stream downtime", func(z float64) float64 { return ratio(r.med(z, "staged-1", down), r.med(z, "stream", down)) })
	row("staged 10 % downtime / stream downtime", func(z float64) float64 { return ratio(r.med(z, "staged-10", down), r.med(z, "stream", down)) })
	row("staged 1 % downtime − floor (s)", func(z float64) float64 { return r.med(z, "staged-1", down) - r.med(z, "floor", down) })
	row("stream downtime − floor (s)", func(z float64) float64 { return r.med(z, "stream", down) - r.med(z, "floor", down) })
	row("staged 1 % downtime / stream-api downtime", func(z float64) float64 { return ratio(r.med(z, "staged-1", down), r.med(z, "stream-api", down)) })
	row("staged 1 % downtime / offen downtime", func(z float64) float64 { return ratio(r.med(z, "staged-1", down), r.med(z, "offen", down)) })
	row("stream downtime / offen downtime", func(z float64) float64 { return ratio(r.med(z, "stream", down), r.med(z, "offen", down)) })
	row("stream wall / offen wall", func(z float64) float64 { return ratio(r.med(z, "stream", wall), r.med(z, "offen", wall)) })
	row("stream archive / offen archive", func(z float64) float64 { return ratio(r.med(z, "stream", archived), r.med(z, "offen", archived)) })
	row("stream wall / stream-api wall", func(z float64) float64 { return ratio(r.med(z, "stream", wall), r.med(z, "stream-api", wall)) })
	row("manual downtime / stream downtime", func(z float64) float64 { return ratio(r.med(z, "manual", down), r.med(z, "stream", down)) })
	row("stream wall / read floor (tar in a container)", func(z float64) float64 { return ratio(r.med(z, "stream", wall), r.med(z, "read-tar", wall)) })
	row("stream wall / read floor (tar \\| cat)", func(z float64) float64 { return ratio(r.med(z, "stream", wall), r.med(z, "read-tar-pipe", wall)) })
	row("stream wall / read floor (docker cp)", func(z float64) float64 { return ratio(r.med(z, "stream", wall), r.med(z, "read-cp", wall)) })
	row("restore wall / stream backup wall", func(z float64) float64 { return ratio(r.med(z, "restore-stream", wall), r.med(z, "stream", wall)) })
	row("stream archive / data", func(z float64) float64 {
		d, _ := r.first(z, "data")
		return ratio(r.med(z, "stream", archived), float64(d.DataBytes))
	})
	row("stream throughput (MB/s of data, wall)", func(z float64) float64 {
		d, _ := r.first(z, "data")
		return ratio(float64(d.DataBytes)/1e6, r.med(z, "stream", wall))
	})
	if len(r.sizes) > 1 {
		a, b := r.sizes[0], r.sizes[len(r.sizes)-1]
		p("\nGrowth from %s to %s (median downtime at %s / at %s): ", sizeName(a), sizeName(b), sizeName(b), sizeName(a))
		var parts []string
		for _, m := range methods {
			if g := ratio(r.med(b, m.key, down), r.med(a, m.key, down)); !math.IsNaN(g) {
				parts = append(parts, fmt.Sprintf("%s %s×", m.key, s(g)))
			}
		}
		p("%s.\n", strings.Join(parts, ", "))
	}

	if d, ok := r.first(small, "data"); ok && len(r.values(small, "offen", wall)) == 0 {
		p("\nPeer reference, **not measured here**: offen/docker-volume-backup took 3.0 s and wrote 510 MB (zstd) for a\n")
		p("944 MB, 20,005-file volume on this machine class (ENGINE-NOTES.md). Its image cannot be pulled on\n")
		p("this machine (no registry), so it is quoted, not re-run, and its data set differs from ours. Scaled to our\n")
		p("%s data set (%.0f MB) at the same rate it would be ≈ %.1f s; our `stream` backup took %s s wall (%s s downtime)\n",
			sizeName(small), float64(d.DataBytes)/1e6, 3.0*float64(d.DataBytes)/944e6, s(r.med(small, "stream", wall)), s(r.med(small, "stream", down)))
		p("and wrote %s (%.0f%% of the data; offen's was 54%% of a data set of unknown composition).\n",
			mb(r.med(small, "stream", archived)), 100*ratio(r.med(small, "stream", archived), float64(d.DataBytes)))
	}

	p("\n<details><summary>Every run</summary>\n\n| size | method | run | downtime | stopping | stopped | starting | wall | archive | exit |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, rec := range r.recs {
		if rec.Method == "data" || rec.Method == "restore-check" {
			continue
		}
		dt, sg, sd, st := s(rec.DowntimeS), s(rec.StoppingS), s(rec.StoppedS), s(rec.StartingS)
		if strings.HasPrefix(rec.Method, "read-") {
			dt, sg, sd, st = "–", "–", "–", "–"
		}
		p("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %d |\n", sizeName(rec.SizeGB), rec.Method, rec.Rep,
			dt, sg, sd, st, s(rec.WallS), mb(float64(rec.ArchiveBytes)), rec.Exit)
	}
	p("\n</details>\n")

	for _, l := range logs {
		title, file, _ := strings.Cut(l, "=")
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		p("\n<details><summary>%s</summary>\n\n```\n%s```\n\n</details>\n", title, strings.TrimRight(string(b), "\n")+"\n")
	}
	return nil
}
