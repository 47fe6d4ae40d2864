package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/errdefs"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// Options select a project exactly like docker compose's global flags.
// Environment variables (COMPOSE_FILE, COMPOSE_PROJECT_NAME,
// COMPOSE_PROFILES, .env) are applied by Load the same way compose does.
type Options struct {
	Files      []string // -f/--file, repeatable
	Name       string   // -p/--project-name
	ProjectDir string   // --project-directory
	EnvFiles   []string // --env-file, repeatable
	Profiles   []string // --profile, repeatable
	WorkingDir string   // where the user runs the command; "" means the process's
}

// ErrNoProject is returned when no compose file can be found.
var ErrNoProject = errors.New("no compose file found")

// ErrInvalidProject marks errors in the compose files themselves (bad YAML,
// unknown dependency, cycle, invalid name): the user has to fix the file.
var ErrInvalidProject = errors.New("invalid compose project")

// Load reads the project. The returned project has services filtered by
// the active profiles, paths resolved and names normalised, as compose
// would see it.
func Load(ctx context.Context, o Options) (*types.Project, error) {
	wd := o.WorkingDir
	if wd == "" {
		var err error
		if wd, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	// -f paths are relative to where the user runs the command.
	files := make([]string, 0, len(o.Files))
	for _, f := range o.Files {
		if f != "-" && !filepath.IsAbs(f) {
			f = filepath.Join(wd, f)
		}
		files = append(files, f)
	}
	// The search for compose.yaml starts in wd (then its parents), but like
	// compose the project directory is then the first compose file's,
	// unless --project-directory says otherwise.
	searchDir := o.ProjectDir
	if searchDir == "" && len(files) == 0 {
		searchDir = wd
	}
	projectDirFromFiles := func(po *cli.ProjectOptions) error {
		if o.ProjectDir == "" {
			po.WorkingDir = ""
		}
		return nil
	}
	name := o.Name
	if name != "" {
		if err := validName(name); err != nil {
			return nil, err
		}
	}
	profiles := o.Profiles
	popts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(searchDir),
		cli.WithOsEnv,
		cli.WithEnv([]string{"PWD=" + wd}),
		cli.WithEnvFiles(o.EnvFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		projectDirFromFiles,
		cli.WithEnvFiles(o.EnvFiles...),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(profiles...),
		cli.WithName(name),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		return nil, classify(err)
	}
	if len(popts.ConfigPaths) == 0 {
		return nil, fmt.Errorf("%w in %s (looked for compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml); run this in the project directory or pass -f", ErrNoProject, wd)
	}
	p, err := popts.LoadProject(ctx)
	if err != nil {
		return nil, classify(err)
	}
	return p, nil
}

func validName(name string) error {
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (i > 0 && (r == '-' || r == '_'))
		if !ok {
			return fmt.Errorf("%w: project name %q must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit", ErrInvalidProject, name)
		}
	}
	return nil
}

func classify(err error) error {
	if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		msg := err.Error()
		if strings.Contains(msg, "no configuration file provided") {
			return fmt.Errorf("%w: %s", ErrNoProject, text.OneLine(msg))
		}
		return fmt.Errorf("%w: %s", ErrInvalidProject, text.OneLine(msg))
	}
	return fmt.Errorf("%w: %s", ErrInvalidProject, withoutKind(text.OneLine(err.Error())))
}

// withoutKind drops the ": invalid compose project" that compose-go
// appends to its messages: ErrInvalidProject says it once, in front.
func withoutKind(msg string) string {
	m, _ := strings.CutSuffix(msg, ": "+errdefs.ErrInvalid.Error())
	return m
}
