package plugin

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/compose"
)

// daemon's repeatable --project-directory shadows the global one, before
// or after the subcommand.
func TestDaemonProjectDirectoryFlag(t *testing.T) {
	for _, args := range [][]string{
		{"daemon", "--project-directory", "/a", "--project-directory", "/b"},
		{"--project-directory", "/a", "daemon", "--project-directory", "/b"},
	} {
		root := NewRootCommand(nil)
		c, rest, err := root.Find(args)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ParseFlags(rest); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		got, err := c.Flags().GetStringArray("project-directory")
		if err != nil || !slices.Equal(got, []string{"/a", "/b"}) {
			t.Errorf("%v: project directories = %v, %v", args, got, err)
		}
	}
}

func TestDaemonProjectStampAndLoad(t *testing.T) {
	ctx := context.Background()
	g := enabledProject(t, "*/5 * * * *")
	env, err := loadProject(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	p := daemonProject(env, compose.Options{ProjectDir: env.Dir})
	s1, err := p.Stamp()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := p.Load(ctx)
	if err != nil || !cfg.Enabled || cfg.Schedule != "*/5 * * * *" {
		t.Errorf("Load = %+v, %v", cfg, err)
	}
	// A change of size or mtime changes the stamp.
	var out bytes.Buffer
	if err := runConfigSet(ctx, &out, g, "catch_up", "true"); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(env.StatePath, future, future); err != nil {
		t.Fatal(err)
	}
	if s2, _ := p.Stamp(); s2 == s1 {
		t.Error("stamp unchanged after a settings change")
	}
	if cfg, _ := p.Load(ctx); !cfg.CatchUp {
		t.Errorf("reloaded settings: %+v", cfg)
	}
}
