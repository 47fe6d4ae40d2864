// Command pgload is the load client of the database benchmark (bench/pg.sh).
//
//	pgload run -dsn DSN -scale N [-clients 2] [-rate 200] -out FILE
//	pgload gaps -in FILE -from NS -to NS [-wait 30s]
//	pgload report -results results.jsonl [-meta meta.txt] [-logs DIR]
//
// run drives pgbench's TPC-B-like transaction (update an account, read it
// back, update its teller and branch, insert a history row) against the
// tables of `pgbench -i -s N`, from several connections, at a steady total
// rate, and appends the commit time of every committed transaction to FILE
// (one line per commit: Unix nanoseconds, a space, the client number). A
// commit is recorded when the server has acknowledged it. Unlike pgbench, it
// survives the server going away: a client whose connection breaks retries
// every 10 ms until the server accepts it again, which is what makes the
// client-observed downtime measurable. It stops on SIGTERM or SIGINT.
//
// gaps reads such a file and prints, as JSON, the longest gap between two
// consecutive commits (of any client) around the window [from, to]: the
// last commit at or before from, every commit inside, and the first commit
// after to are the points considered. With -wait it waits for a commit after
// to, and fails when none comes: the load did not resume.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pgload run|gaps|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(os.Args[2:])
	case "gaps":
		err = gapsCmd(os.Args[2:])
	case "report":
		err = reportCmd(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "pgload: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgload: %v\n", err)
		os.Exit(1)
	}
}

// commitLog appends commit times to a file, flushed every 50 ms so that a
// reader sees commits with little delay.
type commitLog struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

func (l *commitLog) add(t time.Time, client int) {
	l.mu.Lock()
	l.w.WriteString(strconv.FormatInt(t.UnixNano(), 10))
	l.w.WriteByte(' ')
	l.w.WriteString(strconv.Itoa(client))
	l.w.WriteByte('\n')
	l.mu.Unlock()
}

func (l *commitLog) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Flush()
}

type counters struct {
	commits, errors, reconnects atomic.Int64
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	dsn := fs.String("dsn", "postgres://postgres@db:5432/postgres?sslmode=disable", "connection string")
	scale := fs.Int("scale", 0, "pgbench scale factor of the tables (required)")
	clients := fs.Int("clients", 2, "concurrent connections")
	rate := fs.Float64("rate", 200, "total transactions per second (0: as fast as possible)")
	out := fs.String("out", "", "file the commit times are appended to (required)")
	connectTimeout := fs.Duration("connect-timeout", 500*time.Millisecond, "timeout of one connection attempt")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *scale < 1 || *out == "" || *clients < 1 {
		return errors.New("run: -scale, -out and -clients ≥ 1 are required")
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer f.Close()
	log := &commitLog{f: f, w: bufio.NewWriterSize(f, 1<<16)}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg, err := pgx.ParseConfig(*dsn)
	if err != nil {
		return fmt.Errorf("run: dsn: %w", err)
	}
	cfg.ConnectTimeout = *connectTimeout

	var c counters
	var wg sync.WaitGroup
	for i := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client(ctx, cfg, i, *scale, *rate/float64(*clients), log, &c)
		}()
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				log.flush()
			}
		}
	}()
	wg.Wait()
	close(done)
	if err := log.flush(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	fmt.Fprintf(os.Stderr, "pgload: %d commits, %d failed transactions, %d reconnects\n",
		c.commits.Load(), c.errors.Load(), c.reconnects.Load())
	return nil
}

// client runs transactions on one connection until ctx ends, reconnecting
// whenever the connection fails.
func client(ctx context.Context, cfg *pgx.ConnConfig, id, scale int, rate float64, log *commitLog, c *counters) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(id)))
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	next := time.Now()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		if conn == nil {
			var err error
			conn, err = pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				conn = nil
				sleep(ctx, 10*time.Millisecond)
				continue
			}
			c.reconnects.Add(1)
		}
		if interval > 0 {
			now := time.Now()
			if d := next.Sub(now); d > 0 {
				sleep(ctx, d)
			} else if -d > interval {
				next = now // behind (after an outage): do not burst to catch up
			}
			next = next.Add(interval)
		}
		aid := 1 + rng.IntN(100000*scale)
		tid := 1 + rng.IntN(10*scale)
		bid := 1 + rng.IntN(scale)
		delta := rng.IntN(10001) - 5000
		// One round trip: the simple protocol runs the statements in order
		// and stops at the first error, which aborts the transaction.
		sql := fmt.Sprintf(`BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + %[4]d WHERE aid = %[1]d;
SELECT abalance FROM pgbench_accounts WHERE aid = %[1]d;
UPDATE pgbench_tellers SET tbalance = tbalance + %[4]d WHERE tid = %[2]d;
UPDATE pgbench_branches SET bbalance = bbalance + %[4]d WHERE bid = %[3]d;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (%[2]d, %[3]d, %[1]d, %[4]d, CURRENT_TIMESTAMP);
COMMIT;`, aid, tid, bid, delta)
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := conn.PgConn().Exec(tctx, sql).ReadAll()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.errors.Add(1)
			conn.Close(context.Background())
			conn = nil
			sleep(ctx, 10*time.Millisecond)
			continue
		}
		log.add(time.Now(), id)
		c.commits.Add(1)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// gapResult is what gaps prints.
type gapResult struct {
	MaxGapS float64 `json:"max_gap_s"`
	// GapStartNS is the commit before the longest gap, GapEndNS the one after.
	GapStartNS int64 `json:"gap_start_ns"`
	GapEndNS   int64 `json:"gap_end_ns"`
	// CommitsInWindow counts the commits in (from, to].
	CommitsInWindow int `json:"commits_in_window"`
	// CommitsUpToGap counts every commit in the file at or before GapStartNS:
	// a backup taken while the server was stopped in that gap must contain
	// at least these.
	CommitsUpToGap int     `json:"commits_up_to_gap"`
	TPS            float64 `json:"tps"`
}

func gapsCmd(args []string) error {
	fs := flag.NewFlagSet("gaps", flag.ContinueOnError)
	in := fs.String("in", "", "commit log written by run")
	from := fs.Int64("from", 0, "window start, Unix ns")
	to := fs.Int64("to", 0, "window end, Unix ns")
	wait := fs.Duration("wait", 0, "wait this long for a commit after the window")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *to < *from {
		return errors.New("gaps: -in and -from ≤ -to are required")
	}
	deadline := time.Now().Add(*wait)
	for {
		ts, err := readCommits(*in)
		if err != nil {
			return err
		}
		r, err := gaps(ts, *from, *to)
		if err == nil {
			return json.NewEncoder(os.Stdout).Encode(r)
		}
		if !errors.Is(err, errNoCommitAfter) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readCommits returns the commit times of a log, sorted; an incomplete last
// line (being written) is ignored.
func readCommits(path string) ([]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gaps: %w", err)
	}
	s := string(b)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	} else {
		s = ""
	}
	var ts []int64
	for line := range strings.SplitSeq(s, "\n") {
		if line == "" {
			continue
		}
		field, _, _ := strings.Cut(line, " ")
		t, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("gaps: %s: bad line %q", path, line)
		}
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts, nil
}

var (
	errNoCommitAfter  = errors.New("gaps: no commit after the window: the load did not resume")
	errNoCommitBefore = errors.New("gaps: no commit at or before the window start: the load was not running")
)

// gaps finds the longest gap between consecutive commits among the last
// commit at or before from, the commits in (from, to] and the first commit
// after to. ts must be sorted.
func gaps(ts []int64, from, to int64) (gapResult, error) {
	first := sort.Search(len(ts), func(i int) bool { return ts[i] > from }) - 1
	if first < 0 {
		return gapResult{}, errNoCommitBefore
	}
	last := sort.Search(len(ts), func(i int) bool { return ts[i] > to })
	if last == len(ts) {
		return gapResult{}, errNoCommitAfter
	}
	r := gapResult{CommitsInWindow: last - first - 1}
	best := -1
	for i := first; i < last; i++ {
		if d := ts[i+1] - ts[i]; best < 0 || d > ts[best+1]-ts[best] {
			best = i
		}
	}
	r.GapStartNS, r.GapEndNS = ts[best], ts[best+1]
	r.MaxGapS = float64(r.GapEndNS-r.GapStartNS) / 1e9
	r.CommitsUpToGap = best + 1
	if to > from {
		r.TPS = float64(r.CommitsInWindow) / (float64(to-from) / 1e9)
	}
	return r, nil
}
