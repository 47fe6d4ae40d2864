package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// event is the part of an engine event the downtime needs.
type event struct {
	Container string `json:"-"`
	Service   string `json:"service"`
	Action    string `json:"action"`
	TimeNano  int64  `json:"-"`
	Rel       string `json:"t"` // relative to the command's start, for reading
}

const healthy = "health_status: healthy"

func isDown(action string) bool { return action == "die" || action == "stop" }

// window is one downtime as seen in the events.
type window struct {
	FirstDown int64 // first die/stop
	LastDown  int64 // last die/stop of any container
	FirstUp   int64 // first start after LastDown
	End       int64 // last container back (healthy, or started without a healthcheck)
	Down      int   // containers that went down
}

// downtime computes the window from evs (in any order). hasHealth says which
// containers have a healthcheck; for those, "back" means the first healthy
// event after the start that followed their last stop. It reports whether
// every container that went down is back.
func downtime(evs []event, hasHealth map[string]bool) (window, bool) {
	evs = append([]event(nil), evs...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].TimeNano < evs[j].TimeNano })
	var w window
	lastDown := map[string]int64{}
	for _, e := range evs {
		if isDown(e.Action) {
			if w.FirstDown == 0 {
				w.FirstDown = e.TimeNano
			}
			lastDown[e.Container] = e.TimeNano
			w.LastDown = e.TimeNano
		}
	}
	w.Down = len(lastDown)
	if w.Down == 0 {
		return w, true
	}
	complete := true
	for id, down := range lastDown {
		var started, back int64
		for _, e := range evs {
			if e.Container != id || e.TimeNano < down {
				continue
			}
			if started == 0 && e.Action == "start" {
				started = e.TimeNano
				if !hasHealth[id] {
					back = started
					break
				}
			}
			if started != 0 && e.Action == healthy {
				back = e.TimeNano
				break
			}
		}
		if started != 0 && started >= w.LastDown && (w.FirstUp == 0 || started < w.FirstUp) {
			w.FirstUp = started
		}
		if back == 0 {
			complete = false
			continue
		}
		if back > w.End {
			w.End = back
		}
	}
	return w, complete
}

// result is what measure prints.
type result struct {
	WallS     float64 `json:"wall_s"`
	CmdS      float64 `json:"cmd_s"`
	Exit      int     `json:"exit"`
	DowntimeS float64 `json:"downtime_s"`
	// Phases of the downtime: stopping (first down → last down), stopped
	// (last down → first start: the work done with everything stopped),
	// starting (first start → last healthy).
	StoppingS  float64 `json:"stopping_s"`
	StoppedS   float64 `json:"stopped_s"`
	StartingS  float64 `json:"starting_s"`
	Containers int     `json:"containers_down"`
	Events     []event `json:"events,omitempty"`
}

func secs(ns int64) float64 { return float64(ns) / 1e9 }

func runMeasure(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	project := fs.String("project", "", "compose project whose containers are watched")
	outPath := fs.String("out", "", "file for the command's stdout (default: discard)")
	errPath := fs.String("err", "", "file for the command's stderr (default: our stderr)")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for containers to come back after the command")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *project == "" || fs.NArg() == 0 {
		return errors.New("usage: benchtool measure -project P [-out F] [-err F] -- CMD ARGS...")
	}
	ctx := context.Background()
	api, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer api.Close()

	start := time.Now()
	// Since = start: the engine replays what happened between our request
	// and the subscription taking effect, so nothing is lost to the race.
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	msgs, errs := api.Events(ectx, events.ListOptions{
		Since: fmt.Sprintf("%d.%09d", start.Unix(), start.Nanosecond()),
		Filters: filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)),
			filters.Arg("label", "com.docker.compose.project="+*project)),
	})
	var (
		mu  sync.Mutex
		evs []event
	)
	streamErr := make(chan error, 1)
	go func() {
		for {
			select {
			case m := <-msgs:
				e := event{Container: m.Actor.ID, Service: m.Actor.Attributes["com.docker.compose.service"], Action: string(m.Action), TimeNano: m.TimeNano}
				if strings.HasPrefix(e.Action, "exec_") {
					continue // healthcheck probes
				}
				mu.Lock()
				evs = append(evs, e)
				mu.Unlock()
			case err := <-errs:
				if ectx.Err() == nil {
					streamErr <- err
				}
				return
			}
		}
	}()

	cmd := exec.CommandContext(ctx, fs.Arg(0), fs.Args()[1:]...)
	cmd.Stderr = os.Stderr
	if *outPath != "" {
		f, err := os.Create(*outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd.Stdout = f
	}
	if *errPath != "" {
		f, err := os.Create(*errPath)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd.Stderr = f
	}
	runErr := cmd.Run()
	cmdEnd := time.Now()
	res := result{CmdS: cmdEnd.Sub(start).Seconds()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(runErr, &exitErr):
		res.Exit = exitErr.ExitCode()
	case runErr != nil:
		return runErr
	}

	hasHealth := map[string]bool{}
	healthOf := func(id string) bool {
		if v, ok := hasHealth[id]; ok {
			return v
		}
		c, err := api.ContainerInspect(ctx, id)
		hc := err == nil && c.Config != nil && c.Config.Healthcheck != nil &&
			len(c.Config.Healthcheck.Test) > 0 && c.Config.Healthcheck.Test[0] != "NONE"
		hasHealth[id] = hc
		return hc
	}
	deadline := cmdEnd.Add(*timeout)
	var w window
	for {
		mu.Lock()
		snapshot := append([]event(nil), evs...)
		mu.Unlock()
		for _, e := range snapshot {
			healthOf(e.Container)
		}
		var complete bool
		w, complete = downtime(snapshot, hasHealth)
		if complete {
			evs = snapshot
			break
		}
		select {
		case err := <-streamErr:
			return fmt.Errorf("event stream: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containers of %s did not come back within %s after the command (exit %d)", *project, *timeout, res.Exit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()

	end := cmdEnd
	if w.End != 0 && time.Unix(0, w.End).After(end) {
		end = time.Unix(0, w.End)
	}
	res.WallS = end.Sub(start).Seconds()
	res.Containers = w.Down
	if w.Down > 0 {
		res.DowntimeS = secs(w.End - w.FirstDown)
		res.StoppingS = secs(w.LastDown - w.FirstDown)
		res.StoppedS = secs(w.FirstUp - w.LastDown)
		res.StartingS = secs(w.End - w.FirstUp)
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].TimeNano < evs[j].TimeNano })
	for _, e := range evs {
		e.Rel = fmt.Sprintf("%.3f", secs(e.TimeNano-start.UnixNano()))
		res.Events = append(res.Events, e)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
