package state

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		expr    string
		wantErr string // empty: valid
	}{
		{"0 2 * * *", ""},
		{"*/15 * * * *", ""},
		{"30 3 * * 1-5", ""},
		{"0 0 1 jan,jul *", ""},
		{"0 4 * * sun", ""},
		{"TZ=Europe/Berlin 0 2 * * *", ""},
		{"CRON_TZ=UTC 0 2 * * *", ""},
		{"@daily", ""},
		{"@midnight", ""},
		{"@hourly", ""},
		{"@weekly", ""},
		{"@monthly", ""},
		{"@yearly", ""},
		{"@every 1m", ""},
		{"@every 6h", ""},
		{"@every 1s", ""},
		{"", "want 5 fields (minute hour day month weekday) or a descriptor like @daily, got nothing"},
		{"0 0 2 * * *", "want 5 fields (minute hour day month weekday) or a descriptor like @daily, got 6"},
		{"0 2 * *", "got 4"},
		{"nonsense", "got 1"},
		{"61 2 * * *", `the minute field "61" is not valid: it takes 0-59`},
		{"0 25 * * *", `the hour field "25" is not valid: it takes 0-23`},
		{"0 2-25 * * *", `the hour field "2-25" is not valid: it takes 0-23`},
		{"0 2 * 13 *", `the month field "13" is not valid: it takes 1-12 or JAN-DEC`},
		{"0 2 * * 8", `the weekday field "8" is not valid`},
		{"x 2 * * *", `the minute field "x" is not valid`},
		{"0 0 30 2 *", "never fires"},
		{"@fortnightly", "want @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>"},
		{"@every", "want @yearly"},
		{"@every soon", "want @every with a duration of at least 1s"},
		{"@every -1m", "at least 1s"},
		{"@every 10ms", "at least 1s"},
		{"TZ=UTC", "want a schedule after the time zone"},
		{"TZ=Nowhere/Special 0 2 * * *", "bad location"},
	}
	for _, tt := range tests {
		_, err := ParseSchedule(tt.expr)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseSchedule(%q) = %v, want no error", tt.expr, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseSchedule(%q) = %v, want an error containing %q", tt.expr, err, tt.wantErr)
		case err != nil && !strings.HasPrefix(err.Error(), "schedule "):
			t.Errorf("ParseSchedule(%q) error %q does not name the schedule", tt.expr, err)
		}
	}
}

func TestNextRuns(t *testing.T) {
	from := time.Date(2026, 11, 25, 23, 10, 30, 0, time.UTC) // a Wednesday
	at := func(day, h, m int) time.Time { return time.Date(2026, 11, day, h, m, 0, 0, time.UTC) }
	tests := []struct {
		expr string
		n    int
		want []time.Time
	}{
		{"0 2 * * *", 3, []time.Time{at(26, 2, 0), at(27, 2, 0), at(28, 2, 0)}},
		{"*/20 * * * *", 3, []time.Time{at(25, 23, 20), at(25, 23, 40), at(26, 0, 0)}},
		{"30 3 * * 1-5", 3, []time.Time{at(26, 3, 30), at(27, 3, 30), at(30, 3, 30)}},
		{"@daily", 2, []time.Time{at(26, 0, 0), at(27, 0, 0)}},
		{"@hourly", 2, []time.Time{at(26, 0, 0), at(26, 1, 0)}},
		{"@every 1m", 2, []time.Time{at(25, 23, 11).Add(30 * time.Second), at(25, 23, 12).Add(30 * time.Second)}},
		{"TZ=Europe/Berlin 0 2 * * *", 1, []time.Time{at(26, 1, 0)}},
		{"0 2 * * *", 0, []time.Time{}},
	}
	for _, tt := range tests {
		got, err := NextRuns(tt.expr, from, tt.n)
		if err != nil {
			t.Errorf("NextRuns(%q): %v", tt.expr, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("NextRuns(%q) = %v, want %v", tt.expr, got, tt.want)
			continue
		}
		for i := range got {
			if !got[i].Equal(tt.want[i]) {
				t.Errorf("NextRuns(%q)[%d] = %v, want %v", tt.expr, i, got[i], tt.want[i])
			}
		}
	}
	if _, err := NextRuns("0 0 2 * * *", from, 1); err == nil {
		t.Error("NextRuns of a 6-field schedule succeeded")
	}
	// A schedule without TZ= follows the location of from.
	tokyo := time.FixedZone("JST", 9*3600)
	got, err := NextRuns("0 2 * * *", from.In(tokyo), 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{time.Date(2026, 11, 27, 2, 0, 0, 0, tokyo)}; !reflect.DeepEqual(got, want) {
		t.Errorf("NextRuns in JST = %v, want %v", got, want)
	}
}
