package compose_test

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/enginetest"
)

// cleanComposeEnv unsets the variables compose reads, so the tests do not
// depend on the environment they run in. t.Setenv restores them.
func cleanComposeEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_PATH_SEPARATOR", "COMPOSE_DISABLE_ENV_FILE", "PG_VERSION"} {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}

// testdata returns the absolute path of testdata/elem….
func testdata(t *testing.T, elem ...string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(append([]string{"testdata"}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, o compose.Options) *types.Project {
	t.Helper()
	p, err := compose.Load(t.Context(), o)
	if err != nil {
		t.Fatalf("Load(%+v): %v", o, err)
	}
	return p
}

func serviceNames(p *types.Project) []string {
	return slices.Sorted(maps.Keys(p.Services))
}

func dependencies(svc types.ServiceConfig) []string {
	return slices.Sorted(maps.Keys(svc.DependsOn))
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		opts     func(t *testing.T) compose.Options
		project  string
		services []string
		check    func(t *testing.T, p *types.Project)
	}{
		{
			name:     "default file and override in the working directory",
			opts:     func(t *testing.T) compose.Options { return compose.Options{WorkingDir: testdata(t, "default")} },
			project:  "default",
			services: []string{"db", "web"},
			check: func(t *testing.T, p *types.Project) {
				web := p.Services["web"]
				if got := web.DependsOn["db"].Condition; got != types.ServiceConditionHealthy {
					t.Errorf("web depends_on db: got condition %q, want service_healthy", got)
				}
				if web.StopGracePeriod == nil || web.StopGracePeriod.String() != "5s" {
					t.Errorf("web stop_grace_period from the override: got %v, want 5s", web.StopGracePeriod)
				}
				if got, want := p.WorkingDir, testdata(t, "default"); got != want {
					t.Errorf("WorkingDir: got %q, want %q", got, want)
				}
			},
		},
		{
			name:     "compose file in a parent directory",
			opts:     func(t *testing.T) compose.Options { return compose.Options{WorkingDir: testdata(t, "parent", "child")} },
			project:  "parent",
			services: []string{"app"},
			check: func(t *testing.T, p *types.Project) {
				if got, want := p.WorkingDir, testdata(t, "parent"); got != want {
					t.Errorf("WorkingDir: got %q, want %q", got, want)
				}
			},
		},
		{
			name: "-f several files merged",
			opts: func(t *testing.T) compose.Options {
				return compose.Options{Files: []string{testdata(t, "multi", "base.yaml"), testdata(t, "multi", "extra.yaml")}}
			},
			project:  "multi",
			services: []string{"app", "cache"},
			check: func(t *testing.T, p *types.Project) {
				if got := p.Services["app"].Image; got != "app:2" {
					t.Errorf("app image: got %q, want app:2 from the second file", got)
				}
				if got := dependencies(p.Services["app"]); !slices.Equal(got, []string{"cache"}) {
					t.Errorf("app depends_on: got %v, want [cache]", got)
				}
			},
		},
		{
			name: "-f relative to the working directory",
			opts: func(t *testing.T) compose.Options {
				return compose.Options{WorkingDir: testdata(t), Files: []string{filepath.Join("multi", "base.yaml")}}
			},
			project:  "multi",
			services: []string{"app"},
		},
		{
			name: "-p wins over everything",
			env:  map[string]string{"COMPOSE_PROJECT_NAME": "from-env"},
			opts: func(t *testing.T) compose.Options {
				return compose.Options{WorkingDir: testdata(t, "named"), Name: "from-flag"}
			},
			project:  "from-flag",
			services: []string{"app"},
		},
		{
			name: "COMPOSE_PROJECT_NAME over the directory name",
			env:  map[string]string{"COMPOSE_PROJECT_NAME": "from-env"},
			opts: func(t *testing.T) compose.Options {
				return compose.Options{WorkingDir: testdata(t, "default")}
			},
			project:  "from-env",
			services: []string{"db", "web"},
		},
		{
			name: "COMPOSE_PROJECT_NAME over name in the file",
			env:  map[string]string{"COMPOSE_PROJECT_NAME": "from-env"},
			opts: func(t *testing.T) compose.Options {
				return compose.Options{WorkingDir: testdata(t, "named")}
			},
			project:  "from-env",
			services: []string{"app"},
		},
		{
			name: "name in the file over the directory name",
			opts: func(t *testing.T) compose.Options {
				return compose.Options{WorkingDir: testdata(t, "named")}
			},
			project:  "from-the-file",
			services: []string{"app"},
		},
		{
			name:     ".env interpolation",
			opts:     func(t *testing.T) compose.Options { return compose.Options{WorkingDir: testdata(t, "dotenv")} },
			project:  "dotenv",
			services: []string{"db"},
			check: func(t *testing.T, p *types.Project) {
				if got := p.Services["db"].Image; got != "postgres:16" {
					t.Errorf("db image: got %q, want postgres:16", got)
				}
			},
		},
		{
			name: "the environment wins over .env",
			env:  map[string]string{"PG_VERSION": "15"},
			opts: func(t *testing.T) compose.Options { return compose.Options{WorkingDir: testdata(t, "dotenv")} },
			check: func(t *testing.T, p *types.Project) {
				if got := p.Services["db"].Image; got != "postgres:15" {
					t.Errorf("db image: got %q, want postgres:15", got)
				}
			},
		},
		{
			name: "--env-file replaces .env",
			opts: func(t *testing.T) compose.Options {
				return compose.Options{WorkingDir: testdata(t, "dotenv"), EnvFiles: []string{testdata(t, "dotenv", "other.env")}}
			},
			check: func(t *testing.T, p *types.Project) {
				if got := p.Services["db"].Image; got != "postgres:17" {
					t.Errorf("db image: got %q, want postgres:17", got)
				}
			},
		},
		{
			name: "COMPOSE_FILE",
			env:  map[string]string{"COMPOSE_FILE": filepath.Join("composefile", "sub", "stack.yaml")},
			opts: func(t *testing.T) compose.Options {
				// COMPOSE_FILE is relative to the process's directory,
				// like the user's shell.
				t.Chdir(testdata(t))
				return compose.Options{}
			},
			project:  "sub",
			services: []string{"app"},
		},
		{
			name:     "profiles: none active",
			opts:     func(t *testing.T) compose.Options { return compose.Options{WorkingDir: testdata(t, "profiles")} },
			services: []string{"app"},
		},
		{
			name: "--profile",
			opts: func(t *testing.T) compose.Options {
				return compose.Options{WorkingDir: testdata(t, "profiles"), Profiles: []string{"debug"}}
			},
			services: []string{"app", "debug"},
		},
		{
			name:     "COMPOSE_PROFILES",
			env:      map[string]string{"COMPOSE_PROFILES": "debug,monitoring"},
			opts:     func(t *testing.T) compose.Options { return compose.Options{WorkingDir: testdata(t, "profiles")} },
			services: []string{"app", "debug", "metrics"},
		},
		{
			name: "--profile over COMPOSE_PROFILES",
			env:  map[string]string{"COMPOSE_PROFILES": "debug"},
			opts: func(t *testing.T) compose.Options {
				return compose.Options{WorkingDir: testdata(t, "profiles"), Profiles: []string{"monitoring"}}
			},
			services: []string{"app", "metrics"},
		},
		{
			name:     "links, volumes_from and network_mode are dependencies",
			opts:     func(t *testing.T) compose.Options { return compose.Options{WorkingDir: testdata(t, "relations")} },
			services: []string{"app", "db", "net", "sidecar"},
			check: func(t *testing.T, p *types.Project) {
				for svc, want := range map[string][]string{"app": {"db"}, "sidecar": {"app"}, "net": {"app"}, "db": nil} {
					if got := dependencies(p.Services[svc]); !slices.Equal(got, want) {
						t.Errorf("%s dependencies: got %v, want %v", svc, got, want)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanComposeEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			p := load(t, tt.opts(t))
			if tt.project != "" && p.Name != tt.project {
				t.Errorf("project name: got %q, want %q", p.Name, tt.project)
			}
			if tt.services != nil {
				assertStrings(t, "services", serviceNames(p), tt.services)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

// The implicit dependencies order the stop like depends_on does.
func TestLoadedRelationsOrderTheStop(t *testing.T) {
	cleanComposeEnv(t)
	p := load(t, compose.Options{WorkingDir: testdata(t, "relations")})
	f := enginetest.New(ctr("db", 1, "running"), ctr("app", 1, "running"), ctr("sidecar", 1, "running"), ctr("net", 1, "running"))
	l, _ := newLifecycle(f, p)
	restart(t, stop(t, l, f))
	calls := f.Calls()
	for _, dependent := range []string{"sidecar-1", "net-1"} {
		assertBefore(t, calls, "stopped", dependent, "stop", "app-1")
		assertBefore(t, calls, "start", "app-1", "start", dependent)
	}
	assertBefore(t, calls, "stopped", "app-1", "stop", "db-1")
	assertBefore(t, calls, "start", "db-1", "start", "app-1")
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		opts func(t *testing.T) compose.Options
		want error
		// message is a substring of the error.
		message string
	}{
		{
			name:    "no compose file",
			opts:    func(t *testing.T) compose.Options { return compose.Options{WorkingDir: t.TempDir()} },
			want:    compose.ErrNoProject,
			message: "no compose file found",
		},
		{
			name: "missing -f file",
			opts: func(t *testing.T) compose.Options {
				return compose.Options{Files: []string{filepath.Join(t.TempDir(), "compose.yaml")}}
			},
			want: compose.ErrInvalidProject,
		},
		{
			name:    "invalid YAML",
			opts:    func(t *testing.T) compose.Options { return compose.Options{WorkingDir: testdata(t, "invalid-yaml")} },
			want:    compose.ErrInvalidProject,
			message: "yaml",
		},
		{
			name:    "unknown depends_on service",
			opts:    func(t *testing.T) compose.Options { return compose.Options{WorkingDir: testdata(t, "unknown-dep")} },
			want:    compose.ErrInvalidProject,
			message: "nowhere",
		},
		{
			name:    "dependency cycle",
			opts:    func(t *testing.T) compose.Options { return compose.Options{WorkingDir: testdata(t, "cycle")} },
			want:    compose.ErrInvalidProject,
			message: "cycle",
		},
		{
			name: "invalid -p",
			opts: func(t *testing.T) compose.Options {
				return compose.Options{WorkingDir: testdata(t, "default"), Name: "My Project"}
			},
			want:    compose.ErrInvalidProject,
			message: `"My Project"`,
		},
		{
			name: "-p starting with a dash",
			opts: func(t *testing.T) compose.Options {
				return compose.Options{WorkingDir: testdata(t, "default"), Name: "-x"}
			},
			want: compose.ErrInvalidProject,
		},
		{
			name: "missing --env-file",
			opts: func(t *testing.T) compose.Options {
				return compose.Options{WorkingDir: testdata(t, "dotenv"), EnvFiles: []string{filepath.Join(t.TempDir(), "nope.env")}}
			},
			want: compose.ErrInvalidProject,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanComposeEnv(t)
			p, err := compose.Load(t.Context(), tt.opts(t))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Load: got project %v, error %v; want %v", p, err, tt.want)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !strings.Contains(msg, tt.message) {
				t.Errorf("error %q does not contain %q", msg, tt.message)
			}
			if n := strings.Count(msg, compose.ErrInvalidProject.Error()); n > 1 {
				t.Errorf("error %q says %q %d times", msg, compose.ErrInvalidProject, n)
			}
		})
	}
}
