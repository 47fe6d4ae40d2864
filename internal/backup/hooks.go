package backup

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

// hookTail bounds how much of a failing hook's output goes into an error
// message (and so into the state file): hooks may print secrets.
const hookTail = 300

// LifecycleHooks runs compose's own pre_stop and post_start hooks the way
// compose does (exec in the container; a non-zero exit is an error), since
// stopping and starting through the engine API would otherwise skip them.
func LifecycleHooks(eng Execer) compose.Hooks {
	run := func(ctx context.Context, svc types.ServiceConfig, c engine.Container, hooks []types.ServiceHook, what string) error {
		for i, h := range hooks {
			var env []string
			for k, v := range h.Environment {
				if v == nil {
					continue
				}
				env = append(env, k+"="+*v)
			}
			sort.Strings(env)
			code, out, err := eng.Exec(ctx, c.ID, engine.ExecSpec{Cmd: h.Command, User: h.User, Privileged: h.Privileged, WorkingDir: h.WorkingDir, Env: env})
			if err != nil {
				return fmt.Errorf("%s hook %d of %s: %w", what, i+1, c.Name, err)
			}
			if code != 0 {
				return fmt.Errorf("%s hook %d of %s exited with code %d%s", what, i+1, c.Name, code, tailOf(out))
			}
		}
		return nil
	}
	return compose.Hooks{
		BeforeStop: func(ctx context.Context, svc types.ServiceConfig, c engine.Container) error {
			return run(ctx, svc, c, svc.PreStop, "pre_stop")
		},
		AfterStart: func(ctx context.Context, svc types.ServiceConfig, c engine.Container) error {
			return run(ctx, svc, c, svc.PostStart, "post_start")
		},
	}
}

func tailOf(out string) string {
	out = strings.Join(strings.Fields(out), " ")
	if out == "" {
		return ""
	}
	if len(out) > hookTail {
		out = "…" + out[len(out)-hookTail:]
	}
	return ": " + out
}

// runServiceHooks runs the x-autobackup pre or post command of every
// service that has one, in the first running container of the service.
func runServiceHooks(ctx context.Context, eng Execer, o Options, containers []engine.Container, post bool) error {
	running := compose.Running(containers)
	names := make([]string, 0, len(o.Services))
	for n := range o.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	what := "pre"
	if post {
		what = "post"
	}
	for _, name := range names {
		so := o.Services[name]
		cmd := so.Pre
		if post {
			cmd = so.Post
		}
		if len(cmd) == 0 {
			continue
		}
		cs := running[name]
		if len(cs) == 0 {
			progress.Send(o.Reporter, progress.Event{Kind: progress.Warning, Service: name, Message: fmt.Sprintf("%s: x-autobackup %s hook not run: the service is not running", name, what)})
			continue
		}
		progress.Send(o.Reporter, progress.Event{Kind: progress.Info, Service: name, Message: fmt.Sprintf("hook     %s: %s", name, what)})
		timeout := so.Timeout
		if timeout <= 0 {
			timeout = compose.DefaultHookTimeout
		}
		hctx, cancel := context.WithTimeout(ctx, timeout)
		code, out, err := eng.Exec(hctx, cs[0].ID, engine.ExecSpec{Cmd: cmd})
		cancel()
		if err != nil {
			return fmt.Errorf("x-autobackup %s hook of %s: %w", what, name, err)
		}
		if code != 0 {
			return fmt.Errorf("x-autobackup %s hook of %s exited with code %d%s", what, name, code, tailOf(out))
		}
	}
	return nil
}
