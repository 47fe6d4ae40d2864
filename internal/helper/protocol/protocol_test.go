package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRequestRoundTrip(t *testing.T) {
	tests := []Request{
		&Sync{Src: "/src", Dst: "/s/data"},
		&Sync{Index: "/s/index", KeepIndex: true, Progress: 250 * time.Millisecond, Since: time.Unix(0, 123), Src: "/src", Dst: "/s/data"},
		&Space{Src: "/src", Stage: "/s"},
		&Pack{Token: "tok", Src: "/v", File: "/out/.v.tmp"},
		&Pack{Token: "tok", Level: 19, Probe: true, Src: "/s/data", File: "/out/x"},
		&Unpack{SHA256: "ab12", Size: 0, Archive: "/in/v.tar.zst", Dir: "/v"},
		&Unpack{SHA256: "ab12", Size: 42, AllowDevices: true, Archive: "/in/v.tar.zst", Dir: "/v"},
		&Wipe{Dir: "/v"},
		&Serve{},
	}
	for _, want := range tests {
		argv := Argv(want)
		if argv[0] != Binary || argv[1] != Arg || argv[2] != want.Command() {
			t.Errorf("Argv(%+v) = %q: want %s %s %s first", want, argv, Binary, Arg, want.Command())
		}
		got, err := Decode(argv[2:])
		if err != nil {
			t.Errorf("Decode(%q): %v", argv, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(Argv(%+v)) = %+v", want, got)
		}
	}
}

// The argv the helper parses is the documented one: flags before the
// operands, as a person would type it.
func TestArgv(t *testing.T) {
	got := strings.Join(Argv(&Sync{Index: "/s/index", KeepIndex: true, Src: "/src", Dst: "/s/data"}), " ")
	if want := "/autobackup __helper sync --index /s/index --keep-index /src /s/data"; got != want {
		t.Errorf("sync argv %q, want %q", got, want)
	}
	got = strings.Join(Argv(&Pack{Token: "t", Level: 3, Src: "/v", File: "/out/f"}), " ")
	if want := "/autobackup __helper pack --token t --level 3 /v /out/f"; got != want {
		t.Errorf("pack argv %q, want %q", got, want)
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := [][]string{
		nil,
		{"sync", "/src"},
		{"sync", "/src", "/dst", "extra"},
		{"sync", "--since", "soon", "/src", "/dst"},
		{"sync", "--progress", "-1s", "/src", "/dst"},
		{"sync", "--bogus", "/src", "/dst"},
		{"space", "/src"},
		{"pack", "/v", "/out/f"},
		{"unpack", "--sha256", "ab", "/in/a", "/v"},
		{"unpack", "--size", "1", "/in/a", "/v"},
		{"wipe"},
		{"serve", "x"},
	}
	for _, args := range tests {
		if r, err := Decode(args); !errors.Is(err, ErrUsage) {
			t.Errorf("Decode(%q) = %+v, %v; want a usage error", args, r, err)
		}
	}
	if _, err := Decode([]string{"frobnicate"}); err == nil || errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "frobnicate") {
		t.Errorf("unknown command: %v", err)
	}
}

func TestResultsAndProgress(t *testing.T) {
	var out strings.Builder
	for i := range 3 {
		if err := WriteProgress(&out, Progress{Files: int64(i), Bytes: int64(i) << 20}); err != nil {
			t.Fatal(err)
		}
	}
	want := SyncStats{Files: 3, Copied: 2, CopiedBytes: 3 << 20, Index: "ok", Duration: time.Second}
	if err := WriteResult(&out, want); err != nil {
		t.Fatal(err)
	}
	var got SyncStats
	if err := ReadResult(out.String()+"helper: a warning on stderr\n", &got); err != nil || got != want {
		t.Errorf("ReadResult = %+v, %v; want %+v", got, err, want)
	}

	// The same output, streamed in pieces that split lines.
	var seen []Progress
	s := NewStream(func(p Progress) { seen = append(seen, p) })
	b := []byte(out.String())
	for len(b) > 0 {
		n := min(7, len(b))
		if _, err := s.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	if len(seen) != 3 || seen[2] != (Progress{Files: 2, Bytes: 2 << 20}) {
		t.Errorf("progress seen %+v, want 3 lines", seen)
	}
	got = SyncStats{}
	if err := s.Result(&got); err != nil || got != want {
		t.Errorf("Stream.Result = %+v, %v; want %+v", got, err, want)
	}

	// Progress alone is no result.
	var p strings.Builder
	_ = WriteProgress(&p, Progress{Files: 1})
	if err := ReadResult(p.String(), &got); err == nil {
		t.Error("a progress line read as a result")
	}
	s = NewStream(nil)
	_, _ = s.Write([]byte(p.String()))
	if err := s.Result(&got); err == nil {
		t.Error("a stream of progress only has a result")
	}
	// A result without its final newline still counts.
	s = NewStream(nil)
	_, _ = s.Write([]byte(`{"tar_bytes":10,"archive_bytes":5,"entries":1}`))
	var pr PackResult
	if err := s.Result(&pr); err != nil || pr != (PackResult{TarBytes: 10, ArchiveBytes: 5, Entries: 1}) {
		t.Errorf("unterminated result: %+v, %v", pr, err)
	}
}

func TestSpaceNeed(t *testing.T) {
	if got, want := (SpaceResult{SrcBytes: 100, StageBytes: 40}).Need(), int64(65); got != want {
		t.Errorf("Need = %d, want %d", got, want)
	}
	if got, want := (SpaceResult{SrcBytes: 100, StageBytes: 400}).Need(), int64(5); got != want {
		t.Errorf("Need with a larger stage = %d, want %d", got, want)
	}
	if got, want := (SpaceResult{SrcBytes: 100, StageBytes: 10, Reflink: true}).Need(), int64(5); got != want {
		t.Errorf("Need with reflinks = %d, want %d: clones take no blocks up front", got, want)
	}
}
