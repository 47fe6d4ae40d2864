package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/term"
	"github.com/spf13/pflag"

	"github.com/docker-autobackup/docker-autobackup/internal/notify"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
	"github.com/docker-autobackup/docker-autobackup/internal/size"
)

// printer renders progress events on stderr: one line per step, and on a
// terminal a live line with bytes, rate and ETA while a volume is copied.
// Quiet drops everything but warnings.
type printer struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	quiet    bool
	start    map[string]time.Time // per service or volume
	live     bool                 // a live line is on screen
	lastLive time.Time
	phase    string // the Message of the last Phase event
}

// volumeVerbs says how the volume events of a phase read: the verb of the
// live line and of the start and end lines, and whether those two lines
// are printed at all (verify, upload and download print a result line of
// their own; their progress is the live line only).
func volumeVerbs(phase string) (doing, done string, lines bool) {
	switch phase {
	case "verify":
		return "verifying", "verified", false
	case "upload":
		return "uploading", "uploaded", false
	case "download":
		return "downloading", "downloaded", false
	case "restore":
		return "restoring", "restored", true
	}
	return "copying", "copied", true
}

// progressModes are the values of --progress.
var progressModes = []string{"auto", "tty", "plain", "json", "quiet"}

// reporter renders progress on w as --progress asks: auto draws a live
// line on a terminal and plain lines otherwise, tty and plain force one
// or the other, json writes each event as one JSON object per line, quiet
// (like a command's own --quiet) only warnings.
func (g *globalOptions) reporter(w io.Writer, quiet bool) progress.Reporter {
	switch g.progress {
	case "json":
		return jsonReporter(w)
	case "quiet":
		quiet = true
	}
	p := newPrinter(w, quiet)
	switch g.progress {
	case "tty":
		p.tty = true
	case "plain":
		p.tty = false
	}
	return p
}

func newPrinter(w io.Writer, quiet bool) *printer {
	tty := false
	if f, ok := w.(interface{ FD() uintptr }); ok {
		tty = term.IsTerminal(f.FD())
	} else if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(f.Fd())
	}
	return &printer{w: w, tty: tty, quiet: quiet, start: map[string]time.Time{}}
}

// jsonEvent is an event as --progress json writes it.
type jsonEvent struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Service   string    `json:"service,omitempty"`
	Container string    `json:"container,omitempty"`
	Volume    string    `json:"volume,omitempty"`
	Message   string    `json:"message,omitempty"`
	Bytes     int64     `json:"bytes,omitempty"`
	Total     int64     `json:"total,omitempty"`
	Archive   bool      `json:"archive,omitempty"`
}

// jsonReporter writes every event on w as one JSON object per line, for
// programs that follow a run.
func jsonReporter(w io.Writer) progress.Reporter {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return progress.Func(func(e progress.Event) {
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(jsonEvent{Time: e.Time.UTC(), Kind: string(e.Kind), Service: e.Service, Container: e.Container,
			Volume: e.Volume, Message: e.Message, Bytes: e.Bytes, Total: e.Total, Archive: e.Archive})
	})
}

func (p *printer) Report(e progress.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.quiet && e.Kind != progress.Warning {
		return
	}
	doing, done, lines := volumeVerbs(p.phase)
	switch e.Kind {
	case progress.Phase:
		p.phase = e.Message
		return // the per-step lines say enough
	case progress.VolumeBytes:
		what := doing
		if e.Archive {
			what = "archive"
		}
		elapsed := time.Since(p.start["v:"+e.Volume])
		detail := rateLine(e.Bytes, e.Total, elapsed)
		line := fmt.Sprintf("  %s %s: %s", what, e.Volume, detail)
		if !p.tty {
			// Without a terminal: a plain line now and then on long
			// copies, no escape codes.
			if time.Since(p.start["v:"+e.Volume]) < plainEvery || time.Since(p.lastLive) < plainEvery {
				return
			}
			p.lastLive = time.Now()
			p.line("%s", strings.TrimSpace(line))
			return
		}
		if time.Since(p.lastLive) < 200*time.Millisecond {
			return
		}
		p.lastLive = time.Now()
		p.live = true
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		return
	}
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
		p.live = false
	}
	switch e.Kind {
	case progress.ServiceStop:
		p.start["s:"+e.Service] = e.Time
		p.line("stopping %s", e.Service)
	case progress.ServiceStopped:
		p.line("stopped  %s (%s)", e.Service, since(p.start["s:"+e.Service], e.Time))
	case progress.ServiceStart:
		p.start["s:"+e.Service] = e.Time
		p.line("starting %s", e.Service)
	case progress.ServiceStarted:
		p.line("started  %s", e.Service)
	case progress.ServiceHealthy:
		p.line("ready    %s (%s after start)", e.Service, since(p.start["s:"+e.Service], e.Time))
	case progress.ServiceSkipped:
		p.line("skip     %s: %s", e.Service, e.Message)
	case progress.VolumeStart:
		p.start["v:"+e.Volume] = e.Time
		if lines {
			p.line("%-8s %s", doing, e.Volume)
		}
	case progress.VolumeDone:
		if !lines {
			return
		}
		d := e.Time.Sub(p.start["v:"+e.Volume])
		how := ""
		if e.Message != "" {
			how = "; " + e.Message
		}
		p.line("%-8s %s: %s in %s (%s/s), archive %s%s", done, e.Volume, humanBytes(e.Bytes), d.Round(time.Millisecond), humanBytes(int64(float64(e.Bytes)/max(d.Seconds(), 0.001))), humanBytes(e.Total), how)
	case progress.Warning:
		p.line("WARNING  %s", e.Message)
	default:
		p.line("%s", e.Message)
	}
}

// plainEvery is how often a copy's progress is printed without a terminal.
const plainEvery = 10 * time.Second

func (p *printer) line(format string, a ...any) {
	fmt.Fprintf(p.w, format+"\n", a...)
}

func since(a, b time.Time) string {
	if a.IsZero() {
		return "-"
	}
	return b.Sub(a).Round(time.Millisecond).String()
}

func rateLine(n, total int64, elapsed time.Duration) string {
	rate := float64(n) / max(elapsed.Seconds(), 0.001)
	s := fmt.Sprintf("%s  %s/s", humanBytes(n), humanBytes(int64(rate)))
	// An ETA from the first fraction of a second says nothing.
	if total > 0 && rate > 0 && n < total && elapsed >= time.Second {
		eta := time.Duration(float64(total-n) / rate * float64(time.Second))
		s += fmt.Sprintf("  ~%s of ~%s  ETA %s", pct(n, total), humanBytes(total), eta.Round(time.Second))
	}
	return s
}

func pct(n, total int64) string { return fmt.Sprintf("%d%%", n*100/total) }

// humanBytes formats a byte count for the user.
func humanBytes(n int64) string { return size.Format(n) }

// optionalDuration is a duration flag whose unset value (-1: "use the
// setting") is shown as no default in the help, not as "-1ns".
type optionalDuration struct{ d *time.Duration }

func (o optionalDuration) String() string {
	if o.d == nil || *o.d < 0 {
		return ""
	}
	return o.d.String()
}

func (o optionalDuration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration with a unit, like 30s or 5m")
	}
	if v < 0 {
		return fmt.Errorf("want a duration of 0 or more")
	}
	*o.d = v
	return nil
}

func (o optionalDuration) Type() string { return "duration" }

// lockTimeoutFlag adds --lock-timeout to fs, stored in d (-1 when unset).
func lockTimeoutFlag(fs *pflag.FlagSet, d *time.Duration) {
	*d = -1
	fs.Var(optionalDuration{d}, "lock-timeout", "How long to wait for another autobackup of this project to finish (default: the lock_timeout setting, 0 = fail at once)")
}

// runOutput keeps the last notify.MaxPingBody bytes of what a run
// reported, as plain lines, for the failure ping.
type runOutput struct {
	mu  sync.Mutex
	buf []byte
	p   *printer
}

func newRunOutput() *runOutput {
	o := &runOutput{}
	o.p = &printer{w: o, start: map[string]time.Time{}}
	return o
}

func (o *runOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, b...)
	if n := len(o.buf) - notify.MaxPingBody; n > 0 {
		o.buf = append(o.buf[:0], o.buf[n:]...)
	}
	return len(b), nil
}

func (o *runOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.buf)
}

// tee returns a reporter that sends events to r and records them.
func (o *runOutput) tee(r progress.Reporter) progress.Reporter {
	return progress.Func(func(e progress.Event) {
		o.p.Report(e)
		if r != nil {
			r.Report(e)
		}
	})
}

// lineReporter renders what a use case reports as plain lines on w, for
// commands whose report is their output (prune): a warning as
// "WARNING …", anything else as its message.
func lineReporter(w io.Writer) progress.Reporter {
	var mu sync.Mutex
	return progress.Func(func(e progress.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e.Kind {
		case progress.Warning:
			fmt.Fprintln(w, "WARNING "+e.Message)
		case progress.Info:
			fmt.Fprintln(w, e.Message)
		}
	})
}
