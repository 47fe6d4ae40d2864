package plugin

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/enginetest"
)

// The dry run's plan says in words when there is nothing to stop or
// start, and gives the order when there is.
func TestPrintPlan(t *testing.T) {
	ctx := context.Background()
	g := testProject(t, "")
	env, err := loadProject(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	f := enginetest.New()
	f.AddVolume(engine.VolumeInfo{Name: "shop_dbdata", Driver: "local"})
	var out bytes.Buffer
	if err := printPlan(ctx, &out, f, env); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stop order:  (none: no running service to stop)", "start order: (none: nothing is stopped)", "shop_dbdata"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan without running services lacks %q:\n%s", want, out.String())
		}
	}

	f.AddContainer(&enginetest.Container{Container: engine.Container{ID: "db-1", Name: "shop-db-1", Service: "db", Number: 1, Project: "shop", State: "running"}})
	out.Reset()
	if err := printPlan(ctx, &out, f, env); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stop order:  db", "start order: db"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, out.String())
		}
	}
	if len(f.Ops("stop")) != 0 {
		t.Errorf("the dry run stopped %v", f.Ops("stop"))
	}
}
