// Package protocol is how the plugin talks to the helper containers that
// run its own binary: the requests it sends as a helper's command line
// (`/autobackup __helper CMD …`) and what the helper writes back on stdout
// (progress lines while it works, then one result line). The plugin, the
// helper and the tests' fake engine all encode and decode through this
// package, so the command line and the output exist in one place only.
//
// The package is a leaf: it imports nothing of this module, so both sides
// (and archive, whose direct files take a PackResult) can use it.
package protocol

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"
)

const (
	// Binary is where the plugin's binary sits in a helper image.
	Binary = "/autobackup"
	// Arg is the first argument that selects helper mode.
	Arg = "__helper"
	// ExitNotShared is the exit code of a helper that does not see the
	// file the plugin prepared for it (see helper.ErrNotShared).
	ExitNotShared = 3
)

// A Request is one helper command. Argv encodes it, Decode reads it back.
type Request interface {
	// Command is the command's name, the argument after Arg.
	Command() string
	// Usage is the command's synopsis, for errors about its arguments.
	Usage() string
	args() []string
	define(fs *flag.FlagSet)
	positional() []*string
	check() error
}

// Argv is the command line that runs r in a helper container.
func Argv(r Request) []string {
	return append([]string{Binary, Arg, r.Command()}, r.args()...)
}

// ErrUsage marks arguments that are not a valid request.
var ErrUsage = errors.New("usage")

func newRequest(cmd string) Request {
	switch cmd {
	case "sync":
		return &Sync{}
	case "space":
		return &Space{}
	case "pack":
		return &Pack{}
	case "unpack":
		return &Unpack{}
	case "wipe":
		return &Wipe{}
	case "serve":
		return &Serve{}
	}
	return nil
}

// Decode reads a request from the arguments after Arg: the command's name,
// then its flags and operands. Errors about the arguments wrap ErrUsage.
func Decode(args []string) (Request, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: %s CMD [ARGS]", ErrUsage, Arg)
	}
	r := newRequest(args[0])
	if r == nil {
		return nil, fmt.Errorf("unknown helper command %q", args[0])
	}
	if err := DecodeArgs(r, args[1:]); err != nil {
		return nil, err
	}
	return r, nil
}

// DecodeArgs fills r from the arguments after its command's name.
func DecodeArgs(r Request, args []string) error {
	fs := flag.NewFlagSet(r.Command(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	r.define(fs)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s (%v)", ErrUsage, r.Usage(), err)
	}
	pos := r.positional()
	if fs.NArg() != len(pos) {
		return fmt.Errorf("%w: %s", ErrUsage, r.Usage())
	}
	for i, p := range pos {
		*p = fs.Arg(i)
	}
	if err := r.check(); err != nil {
		return fmt.Errorf("%w: %s (%v)", ErrUsage, r.Usage(), err)
	}
	return nil
}

// Sync mirrors Src into Dst (see helper.Sync).
type Sync struct {
	// Index is the index file, outside both trees; "" for none.
	Index string
	// Since, when not zero, makes files changed since then be copied
	// again whatever the index says.
	Since time.Time
	// KeepIndex leaves the index alone and does not flush Dst: for a pass
	// whose result is read right away.
	KeepIndex bool
	// DeferLarge, where whole-file copies are reflinks (Src and Dst on one
	// xfs or btrfs), leaves large files out of Dst and out of the index,
	// removing earlier clones of them: the pass while the services are
	// stopped clones them then (see helper.SyncOptions.DeferLarge).
	DeferLarge bool
	// Progress, when > 0, makes the helper write a Progress line this
	// often while it works.
	Progress time.Duration
	Src, Dst string
}

func (*Sync) Command() string { return "sync" }
func (*Sync) Usage() string {
	return "__helper sync [--since UNIXNANO] [--index PATH] [--keep-index] [--defer-large] [--progress DURATION] SRC DST"
}

func (r *Sync) args() []string {
	var a []string
	if !r.Since.IsZero() {
		a = append(a, "--since", strconv.FormatInt(r.Since.UnixNano(), 10))
	}
	if r.Index != "" {
		a = append(a, "--index", r.Index)
	}
	if r.KeepIndex {
		a = append(a, "--keep-index")
	}
	if r.DeferLarge {
		a = append(a, "--defer-large")
	}
	if r.Progress > 0 {
		a = append(a, "--progress", r.Progress.String())
	}
	return append(a, r.Src, r.Dst)
}

func (r *Sync) define(fs *flag.FlagSet) {
	fs.Func("since", "unix nanoseconds", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		if n != 0 {
			r.Since = time.Unix(0, n)
		}
		return nil
	})
	fs.StringVar(&r.Index, "index", "", "index file outside SRC and DST")
	fs.BoolVar(&r.KeepIndex, "keep-index", false, "leave the index and do not flush DST")
	fs.BoolVar(&r.DeferLarge, "defer-large", false, "where copies are reflinks, leave large files to the pass while stopped")
	fs.DurationVar(&r.Progress, "progress", 0, "write a progress line this often")
}

func (r *Sync) positional() []*string { return []*string{&r.Src, &r.Dst} }

func (r *Sync) check() error {
	if r.Progress < 0 {
		return errors.New("negative --progress")
	}
	return nil
}

// Space measures Src and Stage for a staging copy; the result is a
// SpaceResult.
type Space struct{ Src, Stage string }

func (*Space) Command() string         { return "space" }
func (*Space) Usage() string           { return "__helper space SRC STAGE" }
func (r *Space) args() []string        { return []string{r.Src, r.Stage} }
func (r *Space) define(*flag.FlagSet)  {}
func (r *Space) positional() []*string { return []*string{&r.Src, &r.Stage} }
func (r *Space) check() error          { return nil }

// Pack writes Src as a zstd-compressed tar into File, which the plugin
// created holding Token; the result is a PackResult. With Probe it only
// checks that File holds Token.
type Pack struct {
	Token string
	Level int // zstd level; 0 for the archive's default
	Probe bool
	// DropLarge removes each regular file of at least 1 MiB with one link
	// from Src once it is in the archive: for a staging copy whose large
	// files are clones made while the services were stopped (see
	// helper.SyncOptions.DeferLarge), so that each clone stops sharing
	// the source's blocks as soon as it is archived.
	DropLarge bool
	Src       string
	File      string
}

func (*Pack) Command() string { return "pack" }
func (*Pack) Usage() string {
	return "__helper pack --token TOKEN [--level N] [--probe] [--drop-large] SRC FILE"
}

func (r *Pack) args() []string {
	a := []string{"--token", r.Token}
	if r.Level != 0 {
		a = append(a, "--level", strconv.Itoa(r.Level))
	}
	if r.Probe {
		a = append(a, "--probe")
	}
	if r.DropLarge {
		a = append(a, "--drop-large")
	}
	return append(a, r.Src, r.File)
}

func (r *Pack) define(fs *flag.FlagSet) {
	fs.StringVar(&r.Token, "token", "", "the token the plugin wrote into FILE")
	fs.IntVar(&r.Level, "level", 0, "zstd level")
	fs.BoolVar(&r.Probe, "probe", false, "only check that FILE holds the token")
	fs.BoolVar(&r.DropLarge, "drop-large", false, "remove each large file from SRC once it is archived")
}

func (r *Pack) positional() []*string { return []*string{&r.Src, &r.File} }

func (r *Pack) check() error {
	if r.Token == "" {
		return errors.New("no --token")
	}
	return nil
}

// Unpack makes Dir hold exactly the tree of the archive Archive, which
// must have Size bytes and the SHA-256 SHA256; the result is an
// UnpackResult.
type Unpack struct {
	SHA256       string
	Size         int64
	AllowDevices bool
	// Progress, when > 0, makes the helper write a Progress line this
	// often while it unpacks (Bytes: the archive's tar bytes read so far).
	Progress     time.Duration
	Archive, Dir string
}

func (*Unpack) Command() string { return "unpack" }
func (*Unpack) Usage() string {
	return "__helper unpack --sha256 HEX --size N [--allow-devices] [--progress D] ARCHIVE DIR"
}

func (r *Unpack) args() []string {
	a := []string{"--sha256", r.SHA256, "--size", strconv.FormatInt(r.Size, 10)}
	if r.AllowDevices {
		a = append(a, "--allow-devices")
	}
	if r.Progress > 0 {
		a = append(a, "--progress", r.Progress.String())
	}
	return append(a, r.Archive, r.Dir)
}

func (r *Unpack) define(fs *flag.FlagSet) {
	fs.StringVar(&r.SHA256, "sha256", "", "expected SHA-256 of ARCHIVE")
	fs.Int64Var(&r.Size, "size", -1, "expected size of ARCHIVE")
	fs.BoolVar(&r.AllowDevices, "allow-devices", false, "accept device nodes")
	fs.DurationVar(&r.Progress, "progress", 0, "write a progress line this often")
}

func (r *Unpack) positional() []*string { return []*string{&r.Archive, &r.Dir} }

func (r *Unpack) check() error {
	if r.SHA256 == "" || r.Size < 0 {
		return errors.New("--sha256 and --size are required")
	}
	if r.Progress < 0 {
		return errors.New("--progress must not be negative")
	}
	return nil
}

// Wipe removes everything inside Dir but Dir itself.
type Wipe struct{ Dir string }

func (*Wipe) Command() string         { return "wipe" }
func (*Wipe) Usage() string           { return "__helper wipe DIR" }
func (r *Wipe) args() []string        { return []string{r.Dir} }
func (r *Wipe) define(*flag.FlagSet)  {}
func (r *Wipe) positional() []*string { return []*string{&r.Dir} }
func (r *Wipe) check() error          { return nil }

// Serve keeps a helper running, for commands exec'd into it, until it is
// stopped.
type Serve struct{}

func (*Serve) Command() string       { return "serve" }
func (*Serve) Usage() string         { return "__helper serve" }
func (*Serve) args() []string        { return nil }
func (*Serve) define(*flag.FlagSet)  {}
func (*Serve) positional() []*string { return nil }
func (*Serve) check() error          { return nil }
