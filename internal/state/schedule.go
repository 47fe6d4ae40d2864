package state

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a schedule: standard cron with 5 fields (minute hour
// day month weekday), optionally prefixed by TZ=<zone>, or a descriptor
// (@yearly, @monthly, @weekly, @daily, @hourly, @every <duration>).
// Schedules without TZ= follow the location of the time passed to Next.
// Cron with a seconds field (6 fields) is refused, as is a schedule that
// never fires (February 30th).
func ParseSchedule(expr string) (cron.Schedule, error) {
	s, err := parseSchedule(expr)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", expr, err)
	}
	return s, nil
}

// parseSchedule is ParseSchedule with errors that do not repeat expr.
func parseSchedule(expr string) (s cron.Schedule, err error) {
	spec := strings.TrimSpace(expr)
	if spec == "" {
		return nil, errors.New("want 5 fields (minute hour day month weekday) or a descriptor like @daily, got nothing")
	}
	rest := spec
	if strings.HasPrefix(rest, "TZ=") || strings.HasPrefix(rest, "CRON_TZ=") {
		// cron slices up to the first space and panics without one.
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			return nil, errors.New("want a schedule after the time zone, like TZ=Europe/Berlin 0 2 * * *")
		}
		rest = strings.TrimSpace(rest[i:])
		spec = spec[:i] + " " + rest
	}
	if strings.HasPrefix(rest, "@") {
		if every, ok := strings.CutPrefix(rest, "@every "); ok {
			d, perr := time.ParseDuration(strings.TrimSpace(every))
			if perr != nil || d < time.Second {
				return nil, errors.New("want @every with a duration of at least 1s, like @every 6h")
			}
		} else {
			switch rest {
			case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly":
			default:
				return nil, errors.New("want @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>")
			}
		}
	} else if n := len(strings.Fields(rest)); n != 5 {
		return nil, fmt.Errorf("want 5 fields (minute hour day month weekday) or a descriptor like @daily, got %d", n)
	}
	defer func() {
		// Stay safe from parser panics on inputs we did not foresee: the
		// schedule comes from a hand-edited file.
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("invalid schedule (%v)", r)
		}
	}()
	s, err = cronParser.Parse(spec)
	if err != nil {
		if ferr := fieldError(rest); ferr != nil {
			return nil, ferr
		}
		return nil, err
	}
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, errors.New("never fires (no such date)")
	}
	return s, nil
}

// cronFields name the five fields of a cron expression and what each takes.
var cronFields = [5]struct{ name, takes string }{
	{"minute", "0-59"},
	{"hour", "0-23"},
	{"day of month", "1-31"},
	{"month", "1-12 or JAN-DEC"},
	{"weekday", "0-6 (0 is Sunday) or SUN-SAT"},
}

// fieldError says which field of a 5-field cron expression is wrong and
// what it takes, rather than the parser's "above maximum (23): 25"; nil
// when each field parses on its own.
func fieldError(expr string) error {
	fields := strings.Fields(expr)
	if len(fields) != len(cronFields) {
		return nil
	}
	for i, f := range fields {
		probe := []string{"*", "*", "*", "*", "*"}
		probe[i] = f
		if _, err := cronParser.Parse(strings.Join(probe, " ")); err != nil {
			return fmt.Errorf("the %s field %q is not valid: it takes %s, a range like 1-5, a list like 1,15 or a step like */6",
				cronFields[i].name, f, cronFields[i].takes)
		}
	}
	return nil
}

// NextRuns returns the next n times expr fires after from, in from's
// location (or the schedule's TZ= zone converted back to it).
func NextRuns(expr string, from time.Time, n int) ([]time.Time, error) {
	s, err := ParseSchedule(expr)
	if err != nil {
		return nil, err
	}
	out := make([]time.Time, 0, max(n, 0))
	t := from
	for range n {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out, nil
}
