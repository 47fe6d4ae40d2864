package enginetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/helper"
	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
)

// helperCommand does what the helper binary's commands do, on the fake's
// volumes: run as the helper's command or exec'd into a serving helper.
// It decodes cmd and encodes the results as the helper does, through
// helper/protocol; what the helper writes on stdout goes to stdout, its
// complaints to stderr.
func (f *Fake) helperCommand(id string, cmd []string, stdout, stderr io.Writer) (int, error) {
	if len(cmd) < 2 || cmd[0] != protocol.Binary || cmd[1] != protocol.Arg {
		return 0, nil // not ours: succeeds, like a hook
	}
	req, err := protocol.Decode(cmd[2:])
	if err != nil {
		fmt.Fprintln(stderr, "helper:", err)
		return 1, nil
	}
	switch r := req.(type) {
	case *protocol.Space:
		if _, err := f.mounted(id, r.Src); err != nil {
			return 1, err
		}
		if _, err := f.mounted(id, r.Stage); err != nil {
			return 1, err
		}
		return 0, protocol.WriteResult(stdout, protocol.SpaceResult{SrcBytes: 1000, FreeBytes: f.freeBytes()})
	case *protocol.Sync:
		// The staging volume holds the mirror: copy the source's files.
		src, err := f.mounted(id, r.Src)
		if err != nil {
			return 1, err
		}
		stage, err := f.mounted(id, path.Dir(r.Dst))
		if err != nil {
			return 1, err
		}
		f.mu.Lock()
		files := slices.Clone(f.files[src])
		f.files[stage] = files
		f.mu.Unlock()
		var n int64
		for _, e := range files {
			n += int64(len(e.Content))
		}
		if r.Progress > 0 {
			_ = protocol.WriteProgress(stdout, protocol.Progress{Files: int64(len(files)) / 2, Bytes: n / 2})
			_ = protocol.WriteProgress(stdout, protocol.Progress{Files: int64(len(files)), Bytes: n})
		}
		return 0, protocol.WriteResult(stdout, protocol.SyncStats{Files: len(files), Copied: len(files), CopiedBytes: n, Index: "ok", Duration: 1000})
	case *protocol.Pack:
		return f.pack(id, r, stdout, stderr)
	case *protocol.Unpack:
		return f.unpack(id, r, stdout, stderr)
	case *protocol.Wipe:
		vol, err := f.mounted(id, r.Dir)
		if err != nil {
			return 0, err
		}
		f.mu.Lock()
		f.files[vol] = nil
		f.mu.Unlock()
	}
	return 0, nil
}

// hostPath maps a path inside helper id to the plugin's machine through
// the helper's binds.
func (f *Fake) hostPath(id, p string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.helpers[id].Binds {
		if rest, ok := strings.CutPrefix(p, b.Target+"/"); ok {
			if f.Foreign {
				return filepath.Join(b.Source, "elsewhere", rest), nil
			}
			return filepath.Join(b.Source, rest), nil
		}
	}
	return "", fmt.Errorf("helper %s has no bind for %s", id, p)
}

// notShared is what a helper that does not see the plugin's file says.
func notShared(stderr io.Writer) (int, error) {
	fmt.Fprintf(stderr, "helper: %v\n", helper.ErrNotShared)
	return protocol.ExitNotShared, nil
}

// pack does what the helper's pack does, on the fake's volumes and the
// real file behind the helper's bind.
func (f *Fake) pack(id string, r *protocol.Pack, stdout, stderr io.Writer) (int, error) {
	out, err := f.hostPath(id, r.File)
	if err != nil {
		return 1, err
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != r.Token {
		return notShared(stderr)
	}
	if r.Probe {
		return 0, nil
	}
	target := map[string]string{"/v": "/v", "/s/data": "/s"}[r.Src]
	vol, err := f.mounted(id, target)
	if err != nil {
		return 1, err
	}
	f.mu.Lock()
	files := slices.Clone(f.files[vol])
	f.mu.Unlock()
	data, err := BuildTar(files)
	if err != nil {
		return 1, err
	}
	var z bytes.Buffer
	enc, err := archive.NewEncoder(&z, 1)
	if err != nil {
		return 1, err
	}
	_, _ = enc.Write(data)
	if err := enc.Close(); err != nil {
		return 1, err
	}
	if err := os.WriteFile(out, z.Bytes(), 0o600); err != nil {
		return 1, err
	}
	return 0, protocol.WriteResult(stdout, protocol.PackResult{TarBytes: int64(len(data)), ArchiveBytes: int64(z.Len()), Entries: len(files)})
}

// unpack does what the helper's unpack does, from the real file behind
// the helper's bind into the fake's volume.
func (f *Fake) unpack(id string, r *protocol.Unpack, stdout, stderr io.Writer) (int, error) {
	in, err := f.hostPath(id, r.Archive)
	if err != nil {
		return 1, err
	}
	b, err := os.ReadFile(in)
	sum := sha256.Sum256(b)
	if err != nil || int64(len(b)) != r.Size || hex.EncodeToString(sum[:]) != r.SHA256 {
		return notShared(stderr)
	}
	vol, err := f.mounted(id, r.Dir)
	if err != nil {
		return 1, err
	}
	dec, err := archive.NewDecoder(bytes.NewReader(b))
	if err != nil {
		return 1, err
	}
	defer dec.Close()
	data, err := io.ReadAll(dec)
	if err != nil {
		return 1, err
	}
	if _, err := archive.CheckTar(bytes.NewReader(data), archive.SafetyOptions{AllowDevices: r.AllowDevices}); err != nil {
		fmt.Fprintln(stderr, "helper:", err)
		return 1, nil
	}
	files, err := ReadTar(data)
	if err != nil {
		return 1, err
	}
	f.mu.Lock()
	f.files[vol] = files
	f.unpacked = append(f.unpacked, vol)
	f.mu.Unlock()
	if r.Progress > 0 {
		_ = protocol.WriteProgress(stdout, protocol.Progress{Bytes: int64(len(data)) / 2})
		_ = protocol.WriteProgress(stdout, protocol.Progress{Bytes: int64(len(data))})
	}
	return 0, protocol.WriteResult(stdout, protocol.UnpackResult{Entries: len(files), Files: len(files), Duration: 1})
}

// freeBytes is the free space the fake's space probe reports.
func (f *Fake) freeBytes() int64 {
	if f.Free != 0 {
		return f.Free
	}
	return 1 << 40
}
