package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// result is one line of bench/pg.sh's results.jsonl.
type result struct {
	FS     string `json:"fs"`
	Scale  int    `json:"scale"`
	Method string `json:"method"`
	Rep    int    `json:"rep"`

	MaxGapS      float64 `json:"max_gap_s"`
	WallS        float64 `json:"wall_s"`
	BaselineGapS float64 `json:"baseline_gap_s"`
	TPS          float64 `json:"baseline_tps"`
	ChangedFiles int     `json:"changed_files"`
	ChangedBytes float64 `json:"changed_bytes"`
	ReadS        float64 `json:"read_s"`
	Synced       string  `json:"synced"`
	Stopped      string  `json:"stopped"`
	ID           string  `json:"id"`

	InitS         float64 `json:"init_s"`
	DatabaseBytes float64 `json:"database_bytes"`
	VolumeBytes   float64 `json:"volume_bytes"`

	AckedBeforeStop int    `json:"acked_before_stop"`
	HistoryRows     int    `json:"history_rows"`
	Amcheck         string `json:"amcheck"`
	Invariant       string `json:"invariant"`
}

type scenarioKey struct {
	fs    string
	scale int
}

var methods = []struct{ name, label string }{
	{"floor", "floor: `docker compose stop` + `docker compose up -d --wait`"},
	{"staged-first", "`staged`, first run (no staging copy yet)"},
	{"staged-next", "`staged`, next run (staging copy kept)"},
	{"stream", "`stream` (full copy while stopped)"},
}

func reportCmd(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	in := fs.String("results", "", "results.jsonl of bench/pg.sh")
	meta := fs.String("meta", "", "meta.txt of bench/pg.sh (key=value lines)")
	logs := fs.String("logs", "", "directory with log-METHOD-FS-SCALE.txt files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return errors.New("report: -results is required")
	}
	rs, err := readResults(*in)
	if err != nil {
		return err
	}
	var metaLines []string
	if *meta != "" {
		b, err := os.ReadFile(*meta)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		metaLines = strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	w := bufio.NewWriter(os.Stdout)
	render(w, rs, metaLines, *logs)
	return w.Flush()
}

func readResults(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	var rs []result
	d := json.NewDecoder(f)
	for {
		var r result
		if err := d.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("report: %s: %w", path, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// stats of one method in one scenario.
type stats struct {
	n                             int
	gap, wall, read, bytes, files float64
	gaps                          []string
	baseline                      float64
	stop                          float64 // median stop, seconds; NaN when no run says
	ok                            bool
}

// stopRE finds the duration in a "stopped  db (1.161s)" line: the
// plugin's own, or the one bench/pg.sh prints around a floor's
// `docker compose stop`.
var stopRE = regexp.MustCompile(`\(([0-9.]+(?:ms|s))`)

// stopSeconds is the stop duration a result's stopped line gives.
func stopSeconds(line string) (float64, bool) {
	m := stopRE.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		return 0, false
	}
	return d.Seconds(), true
}

// pairedDiff is the median, over the runs i that both methods have, of
// a's run i minus b's run i: bench/pg.sh runs floor i right before
// staged-next i, so each difference compares the same database at the
// same age.
func pairedDiff(rs []result, k scenarioKey, a, b string) (float64, int) {
	byRep := map[int]float64{}
	for _, r := range rs {
		if r.FS == k.fs && r.Scale == k.scale && r.Method == b {
			byRep[r.Rep] = r.MaxGapS
		}
	}
	var d []float64
	for _, r := range rs {
		if r.FS != k.fs || r.Scale != k.scale || r.Method != a {
			continue
		}
		if f, ok := byRep[r.Rep]; ok {
			d = append(d, r.MaxGapS-f)
		}
	}
	return median(d), len(d)
}

func collect(rs []result, k scenarioKey, method string) stats {
	var g, w, rd, b, f, base, stop []float64
	var st stats
	for _, r := range rs {
		if r.FS != k.fs || r.Scale != k.scale || r.Method != method {
			continue
		}
		g = append(g, r.MaxGapS)
		w = append(w, r.WallS)
		rd = append(rd, r.ReadS)
		b = append(b, r.ChangedBytes)
		f = append(f, float64(r.ChangedFiles))
		base = append(base, r.BaselineGapS)
		st.gaps = append(st.gaps, fmt.Sprintf("%.2f", r.MaxGapS))
		if sec, ok := stopSeconds(r.Stopped); ok {
			stop = append(stop, sec)
		}
	}
	st.stop = math.NaN()
	if len(stop) > 0 {
		st.stop = median(stop)
	}
	st.n = len(g)
	st.ok = st.n > 0
	st.gap, st.wall, st.read, st.bytes, st.files = median(g), median(w), median(rd), median(b), median(f)
	for _, x := range base {
		st.baseline = max(st.baseline, x)
	}
	return st
}

func mb(b float64) string { return fmt.Sprintf("%.0f MB", b/1e6) }

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

func render(w io.Writer, rs []result, meta []string, logs string) {
	var keys []scenarioKey
	seen := map[scenarioKey]bool{}
	for _, r := range rs {
		k := scenarioKey{r.FS, r.Scale}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	fmt.Fprintln(w, "## Results: PostgreSQL under load")
	fmt.Fprintln(w)
	for _, m := range meta {
		k, v, _ := strings.Cut(m, "=")
		fmt.Fprintf(w, "- %s: %s\n", k, v)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Downtime is the longest gap between two commits acknowledged to the load client, from")
	fmt.Fprintln(w, "the start of the command to its end (plus the first commit after it). Medians; every run is")
	fmt.Fprintln(w, "listed. *Changed files* are the volume's files modified during the run (mtime), a superset")
	fmt.Fprintln(w, "of those changed between the pre-copy and the stop; *read* is one `cat` of them to")
	fmt.Fprintln(w, "`/dev/null` in a container right after the run, page cache as the run left it.")
	fmt.Fprintln(w)

	type target struct{ text, measured, verdict string }
	var targets []target
	for _, k := range keys {
		floor := collect(rs, k, "floor")
		fmt.Fprintf(w, "### %s, pgbench scale %d\n\n", k.fs, k.scale)
		for _, r := range rs {
			if r.FS == k.fs && r.Scale == k.scale && r.Method == "data" {
				fmt.Fprintf(w, "`pgbench -i -s %d`: %.1f s; database %s, volume %s.\n\n", k.scale, r.InitS, mb(r.DatabaseBytes), mb(r.VolumeBytes))
			}
		}
		fmt.Fprintln(w, "| method | client-observed downtime (s) | / floor | − floor (s) | − floor, paired (s) | every run (s) | stop (s) | wall (s) | changed files | read of them (s) |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
		all := map[string]stats{}
		for _, m := range methods {
			st := collect(rs, k, m.name)
			if !st.ok {
				continue
			}
			all[m.name] = st
			ratio, diff, paired, stop := "–", "–", "–", "–"
			if floor.ok && floor.gap > 0 {
				ratio = fmt.Sprintf("%.2f", st.gap/floor.gap)
				diff = fmt.Sprintf("%+.2f", st.gap-floor.gap)
			}
			if m.name == "staged-next" {
				if d, n := pairedDiff(rs, k, m.name, "floor"); n > 0 {
					paired = fmt.Sprintf("%+.2f (%d pairs)", d, n)
				}
			}
			if !math.IsNaN(st.stop) {
				stop = fmt.Sprintf("%.2f", st.stop)
			}
			fmt.Fprintf(w, "| %s | %.2f | %s | %s | %s | %s | %s | %.2f | %.0f (%s) | %.3f |\n",
				m.label, st.gap, ratio, diff, paired, strings.Join(st.gaps, ", "), stop, st.wall, st.files, mb(st.bytes), st.read)
		}
		var base float64
		for _, st := range all {
			base = max(base, st.baseline)
		}
		fmt.Fprintf(w, "\nLongest gap between commits in the seconds before any run (`SETTLE` − 1, the load's own jitter): %.3f s.\n\n", base)

		if !floor.ok {
			continue
		}
		for _, name := range []string{"staged-first", "staged-next"} {
			st, ok := all[name]
			if !ok {
				continue
			}
			// staged-next i runs right after floor i: its verdict is
			// also given on the median of the paired differences.
			var pd float64
			var pn int
			if name == "staged-next" {
				pd, pn = pairedDiff(rs, k, name, "floor")
			}
			both := func(text, measured string, limit float64, ok bool) target {
				v := verdict(ok)
				if pn > 0 {
					measured += fmt.Sprintf("; paired (%d): %+.2f s", pn, pd)
					v = "medians " + v + ", paired " + verdict(pd <= limit)
				}
				return target{text, measured, v}
			}
			switch {
			case k.fs == "ext4" && k.scale <= 50:
				// ≤ 1.3 × floor, i.e. − floor ≤ 0.3 × floor.
				targets = append(targets, both(
					fmt.Sprintf("ext4, scale %d, %s: downtime ≤ 1.3 × floor", k.scale, name),
					fmt.Sprintf("%.2f s / %.2f s = %.2f", st.gap, floor.gap, st.gap/floor.gap),
					0.3*floor.gap, st.gap <= 1.3*floor.gap))
			case k.fs == "ext4":
				lim := 1.2*st.read + 0.2
				targets = append(targets, both(
					fmt.Sprintf("ext4, scale %d, %s: downtime − floor ≤ 1.2 × read of the changed files + 0.2 s", k.scale, name),
					fmt.Sprintf("%.2f − %.2f = %.2f s vs 1.2 × %.3f + 0.2 = %.2f s (%.2f × floor)", st.gap, floor.gap, st.gap-floor.gap, st.read, lim, st.gap/floor.gap),
					lim, st.gap-floor.gap <= lim))
			case k.fs == "xfs":
				targets = append(targets, both(
					fmt.Sprintf("xfs, scale %d, %s: downtime ≤ floor + 0.3 s", k.scale, name),
					fmt.Sprintf("%.2f − %.2f = %+.2f s (%.2f × floor)", st.gap, floor.gap, st.gap-floor.gap, st.gap/floor.gap),
					0.3, st.gap <= floor.gap+0.3))
			}
		}
	}
	if len(targets) > 0 {
		fmt.Fprintln(w, "### Targets")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| target (issue) | measured | verdict |")
		fmt.Fprintln(w, "|---|---|---|")
		for _, t := range targets {
			fmt.Fprintf(w, "| %s | %s | %s |\n", t.text, t.measured, t.verdict)
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintln(w, "### Restores, checked")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "After the runs the load stops; the last `staged` backup (by id) and then the last `stream` one")
	fmt.Fprintln(w, "(`restore latest`) are restored with `--yes`; after each, `pg_amcheck --install-missing --heapallindexed`")
	fmt.Fprintln(w, "must pass, the balances of accounts, tellers and branches must each equal the sum of the history")
	fmt.Fprintln(w, "deltas, and the history must hold every commit acknowledged before that backup's stop (and at most")
	fmt.Fprintln(w, "one more per client, in flight at the stop). The script fails loudly otherwise.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | backup | restore wall (s) | pg_amcheck | balance invariant | history rows / acknowledged before the stop |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rs {
		if !strings.HasPrefix(r.Method, "restore-") {
			continue
		}
		fmt.Fprintf(w, "| %s, scale %d | %s (%s) | %.2f | %s | %s | %d / %d |\n", r.FS, r.Scale,
			strings.TrimPrefix(r.Method, "restore-"), r.ID, r.WallS, r.Amcheck, r.Invariant, r.HistoryRows, r.AckedBeforeStop)
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "<details><summary>Every run</summary>")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| fs | scale | method | run | downtime (s) | wall (s) | gap before (s) | tps before | changed files | read (s) | plugin's `synced` line |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		if r.Method == "data" || strings.HasPrefix(r.Method, "restore-") {
			continue
		}
		synced := "–"
		if r.Synced != "" {
			synced = "`" + r.Synced + "`"
		}
		fmt.Fprintf(w, "| %s | %d | %s | %d | %.3f | %.2f | %.3f | %.0f | %d (%s) | %.3f | %s |\n", r.FS, r.Scale, r.Method, r.Rep,
			r.MaxGapS, r.WallS, r.BaselineGapS, r.TPS, r.ChangedFiles, mb(r.ChangedBytes), r.ReadS, synced)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "</details>")
	if logs == "" {
		return
	}
	for _, k := range keys {
		for _, m := range []string{"staged-first", "staged-next", "stream"} {
			p := filepath.Join(logs, fmt.Sprintf("log-%s-%s-%d.txt", m, k.fs, k.scale))
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			fmt.Fprintf(w, "\n<details><summary>`docker autobackup run` stderr, %s, %s, scale %d, run 1</summary>\n\n```\n%s\n```\n\n</details>\n",
				m, k.fs, k.scale, strings.TrimSpace(string(b)))
		}
	}
}
