package backup_test

import (
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
)

// running returns one running container per service.
func running(names ...string) []engine.Container {
	var out []engine.Container
	for _, n := range names {
		out = append(out, ctr(n, "running").Container)
	}
	return out
}

func TestMakePlanMounts(t *testing.T) {
	web := svc("web", []string{"dbdata:/data", ":/anon"})
	web.Volumes = append(web.Volumes,
		types.ServiceVolumeConfig{Type: types.VolumeTypeBind, Source: "./conf", Target: "/etc/conf"},
		types.ServiceVolumeConfig{Type: types.VolumeTypeTmpfs, Target: "/scratch"},
	)
	web.Tmpfs = types.StringList{"/run"}
	db := svc("db", []string{"dbdata:/var/lib/db", "shared:/shared", "renamed:/r"})
	p := project(web, db)
	p.Volumes["shared"] = types.VolumeConfig{Name: "shared_data", External: true}
	p.Volumes["renamed"] = types.VolumeConfig{Name: "custom-name"}

	plan, err := backup.MakePlan(p, running("web", "db"), nil, map[string]string{"renamed": "skip: true"})
	if err != nil {
		t.Fatalf("MakePlan: %v", err)
	}
	equal(t, "Volumes", plan.Volumes, []backup.PlannedVolume{
		{Key: "renamed", Name: "custom-name", Services: []string{"db"}, Skip: "skip: true"},
		{Key: "dbdata", Name: "p_dbdata", Services: []string{"db", "web"}},
		{Key: "shared", Name: "shared_data", External: true, Services: []string{"db"}},
	})
	equal(t, "Skipped", plan.Skipped, []backup.Unprotected{
		{Service: "web", Type: "anonymous volume", Target: "/anon"},
		{Service: "web", Type: "bind", Source: "./conf", Target: "/etc/conf"},
		{Service: "web", Type: "tmpfs", Target: "/scratch"},
		{Service: "web", Type: "tmpfs", Target: "/run"},
	})
	equal(t, "Project", plan.Project, "p")
}

func TestMakePlanVolumeNames(t *testing.T) {
	tests := []struct {
		name string
		cfg  types.VolumeConfig
		want backup.PlannedVolume
	}{
		{"compose default", types.VolumeConfig{Name: "p_data"}, backup.PlannedVolume{Key: "data", Name: "p_data"}},
		{"name override", types.VolumeConfig{Name: "legacy"}, backup.PlannedVolume{Key: "data", Name: "legacy"}},
		{"external with name", types.VolumeConfig{Name: "outside", External: true}, backup.PlannedVolume{Key: "data", Name: "outside", External: true}},
		// Projects built in code rather than loaded may leave Name empty:
		// compose names a volume <project>_<key>, an external one <key>.
		{"unnamed", types.VolumeConfig{}, backup.PlannedVolume{Key: "data", Name: "p_data"}},
		{"external unnamed", types.VolumeConfig{External: true}, backup.PlannedVolume{Key: "data", Name: "data", External: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project(svc("db", []string{"data:/d"}))
			p.Volumes["data"] = tt.cfg
			plan, err := backup.MakePlan(p, running("db"), nil, nil)
			if err != nil {
				t.Fatalf("MakePlan: %v", err)
			}
			tt.want.Services = []string{"db"}
			equal(t, "Volumes", plan.Volumes, []backup.PlannedVolume{tt.want})
		})
	}
}

func TestMakePlanUndeclaredVolume(t *testing.T) {
	p := project(svc("db", []string{"data:/d"}))
	delete(p.Volumes, "data")
	_, err := backup.MakePlan(p, running("db"), nil, nil)
	wantErrContains(t, err, "service db", `"data"`, "not declared")
}

func TestMakePlanOrder(t *testing.T) {
	chain := project(svc("a", nil), svc("b", nil, "a"), svc("c", nil, "b"))
	diamond := project(svc("a", nil), svc("b", nil, "a"), svc("c", nil, "a"), svc("d", nil, "b", "c"))
	tests := []struct {
		name       string
		p          *types.Project
		containers []engine.Container
		kept       map[string]string
		start      [][]string
		notRunning []string
	}{
		{"chain", chain, running("a", "b", "c"), nil, [][]string{{"a"}, {"b"}, {"c"}}, nil},
		{"diamond", diamond, running("a", "b", "c", "d"), nil, [][]string{{"a"}, {"b", "c"}, {"d"}}, nil},
		{"independent", project(svc("x", nil), svc("y", nil)), running("x", "y"), nil, [][]string{{"x", "y"}}, nil},
		{"not running middle", chain,
			append(running("a", "c"), ctr("b", "exited").Container),
			nil, [][]string{{"a"}, {"c"}}, []string{"b"}},
		{"no containers", chain, nil, nil, nil, []string{"a", "b", "c"}},
		{"one-off only", chain,
			append(running("a", "b"), engine.Container{ID: "c-run", Service: "c", OneOff: true, State: "running"}),
			nil, [][]string{{"a"}, {"b"}}, []string{"c"}},
		{"kept", diamond, running("a", "b", "c", "d"), map[string]string{"c": "stop: false"}, [][]string{{"a"}, {"b"}, {"d"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := backup.MakePlan(tt.p, tt.containers, tt.kept, nil)
			if err != nil {
				t.Fatalf("MakePlan: %v", err)
			}
			var stop [][]string
			for i := len(tt.start) - 1; i >= 0; i-- {
				stop = append(stop, tt.start[i])
			}
			equal(t, "StartOrder", plan.StartOrder, tt.start)
			equal(t, "StopOrder", plan.StopOrder, stop)
			equal(t, "NotRunning", plan.NotRunning, tt.notRunning)
			for name := range tt.p.Services {
				want := false
				for _, l := range tt.start {
					for _, s := range l {
						want = want || s == name
					}
				}
				if got := plan.Stopping(name); got != want {
					t.Errorf("Stopping(%s) = %v, want %v", name, got, want)
				}
			}
		})
	}
}
