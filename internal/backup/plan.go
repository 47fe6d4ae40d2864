package backup

import (
	"fmt"
	"sort"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
)

// PlannedVolume is a named volume of the project that a backup copies.
type PlannedVolume struct {
	Key      string   // the key under `volumes:` in the compose file
	Name     string   // the engine's name, e.g. shop_dbdata
	External bool     // declared external: not created by compose
	Services []string // services mounting it
	Skip     string   // non-empty: not backed up, and why
}

// Unprotected is a mount of a service that is not a named volume and so is
// not backed up.
type Unprotected struct {
	Service, Type, Source, Target string
}

// Plan says what a backup will do, before it does anything.
type Plan struct {
	Project    string
	Volumes    []PlannedVolume
	Skipped    []Unprotected
	StopOrder  [][]string // services to stop, dependents first; each level may run in parallel
	StartOrder [][]string // the same services, dependencies first
	NotRunning []string   // services with no running container: left as they are
	Kept       map[string]string
}

// Stopping reports whether svc will be stopped.
func (p *Plan) Stopping(svc string) bool {
	for _, level := range p.StopOrder {
		for _, s := range level {
			if s == svc {
				return true
			}
		}
	}
	return false
}

// MakePlan works out the volumes and the stop/start order of project,
// given its containers. kept lists services not to stop (with a reason);
// skipVolumes lists volume keys not to back up (with a reason).
func MakePlan(project *types.Project, containers []engine.Container, kept, skipVolumes map[string]string) (*Plan, error) {
	p := &Plan{Project: project.Name, Kept: kept}
	byKey := map[string]*PlannedVolume{}
	names := project.ServiceNames()
	sort.Strings(names)
	for _, name := range names {
		svc := project.Services[name]
		for _, v := range svc.Volumes {
			switch {
			case v.Type == types.VolumeTypeVolume && v.Source != "":
				pv, ok := byKey[v.Source]
				if !ok {
					cfg, declared := project.Volumes[v.Source]
					if !declared {
						return nil, fmt.Errorf("service %s mounts volume %q, which is not declared under the top-level volumes key", name, v.Source)
					}
					pv = &PlannedVolume{Key: v.Source, Name: volumeName(project, v.Source), External: bool(cfg.External)}
					if reason, skip := skipVolumes[v.Source]; skip {
						pv.Skip = reason
					}
					byKey[v.Source] = pv
				}
				if len(pv.Services) == 0 || pv.Services[len(pv.Services)-1] != name {
					pv.Services = append(pv.Services, name)
				}
			case v.Type == types.VolumeTypeVolume:
				p.Skipped = append(p.Skipped, Unprotected{Service: name, Type: "anonymous volume", Target: v.Target})
			default:
				p.Skipped = append(p.Skipped, Unprotected{Service: name, Type: v.Type, Source: v.Source, Target: v.Target})
			}
		}
		for _, t := range svc.Tmpfs {
			p.Skipped = append(p.Skipped, Unprotected{Service: name, Type: "tmpfs", Target: t})
		}
	}
	for _, pv := range byKey {
		p.Volumes = append(p.Volumes, *pv)
	}
	sort.Slice(p.Volumes, func(i, j int) bool { return p.Volumes[i].Name < p.Volumes[j].Name })

	running := compose.Running(containers)
	var stop []string
	for _, name := range names {
		switch {
		case len(running[name]) == 0:
			p.NotRunning = append(p.NotRunning, name)
		case kept[name] != "":
		default:
			stop = append(stop, name)
		}
	}
	p.StartOrder = levels(project, stop)
	for i := len(p.StartOrder) - 1; i >= 0; i-- {
		p.StopOrder = append(p.StopOrder, p.StartOrder[i])
	}
	return p, nil
}

// volumeName is the engine's name of the volume declared under key, as
// compose names it: its name:, else the key for an external volume, else
// <project>_<key>. Loaded projects always have the name filled in.
func volumeName(p *types.Project, key string) string {
	cfg := p.Volumes[key]
	switch {
	case cfg.Name != "":
		return cfg.Name
	case bool(cfg.External):
		return key
	}
	return p.Name + "_" + key
}

// levels groups services by dependency depth: level 0 has no dependencies
// among the project's services, level n depends on something at n-1.
func levels(project *types.Project, only []string) [][]string {
	depth := map[string]int{}
	var visit func(name string, seen map[string]bool) int
	visit = func(name string, seen map[string]bool) int {
		if d, ok := depth[name]; ok {
			return d
		}
		if seen[name] { // cycles are rejected when loading; be safe anyway
			return 0
		}
		seen[name] = true
		d := 0
		for dep := range project.Services[name].DependsOn {
			if _, ok := project.Services[dep]; ok {
				if dd := visit(dep, seen) + 1; dd > d {
					d = dd
				}
			}
		}
		depth[name] = d
		return d
	}
	var out [][]string
	for _, name := range only {
		d := visit(name, map[string]bool{})
		for len(out) <= d {
			out = append(out, nil)
		}
		out[d] = append(out[d], name)
	}
	// Drop empty levels (a level whose services are all not stopped).
	var compact [][]string
	for _, l := range out {
		if len(l) > 0 {
			sort.Strings(l)
			compact = append(compact, l)
		}
	}
	return compact
}
