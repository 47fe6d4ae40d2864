package enginetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docker-autobackup/docker-autobackup/archive"
	"github.com/docker-autobackup/docker-autobackup/helper"
)

// helperCommand does what this program's helper commands do, on the
// fake's volumes: run as a helper's command or exec'd into a serving
// helper. out, when set, receives the command's standard output as it is
// written.
func (f *Fake) helperCommand(id string, cmd []string, out io.Writer) (int, string, error) {
	if len(cmd) < 3 {
		return 0, "", nil
	}
	switch cmd[2] {
	case "sync", "space":
		// The staging volume holds the mirror: copy the source's files.
		src, err := f.mounted(id, "/src")
		if err != nil {
			return 1, "", err
		}
		stage, err := f.mounted(id, "/s")
		if err != nil {
			return 1, "", err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if cmd[2] == "space" {
			return 0, `{"src_bytes":1000,"stage_bytes":0,"free_bytes":` + fmt.Sprint(f.freeBytes()) + "}\n", nil
		}
		f.files[stage] = append([]File(nil), f.files[src]...)
		return 0, fmt.Sprintf(`{"copied":%d,"copied_bytes":0,"deleted":0,"files":%d,"duration_ns":1000}`+"\n", len(f.files[src]), len(f.files[src])), nil
	case "pack", "unpack":
		return f.direct(id, cmd[2], cmd[3:])
	case "wipe":
		if len(cmd) != 4 {
			return 2, "usage", nil
		}
		vol, err := f.mounted(id, cmd[3])
		if err != nil {
			return 1, "", err
		}
		f.SetFiles(vol, nil)
	}
	return 0, "", nil
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

// direct does what the helper's pack and unpack do, on the fake's volumes
// and the real files behind the helper's binds.
func (f *Fake) direct(id, cmd string, args []string) (int, string, error) {
	flags := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "--probe", "--allow-devices":
			flags[a] = "true"
		case "--token", "--level", "--sha256", "--size":
			flags[a] = args[i+1]
			i++
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return 2, "usage", nil
	}
	notShared := fmt.Sprintf("helper: %v", helper.ErrNotShared)
	if cmd == "pack" {
		out, err := f.hostPath(id, pos[1])
		if err != nil {
			return 1, "", err
		}
		if b, err := os.ReadFile(out); err != nil || string(b) != flags["--token"] {
			return helper.ExitNotShared, notShared, nil
		}
		if flags["--probe"] != "" {
			return 0, "", nil
		}
		target := map[string]string{"/v": "/v", "/s/data": "/s"}[pos[0]]
		vol, err := f.mounted(id, target)
		if err != nil {
			return 1, "", err
		}
		files := f.Files(vol)
		data, err := BuildTar(files)
		if err != nil {
			return 1, "", err
		}
		var z bytes.Buffer
		enc, err := archive.NewEncoder(&z, 1)
		if err != nil {
			return 1, "", err
		}
		_, _ = enc.Write(data)
		if err := enc.Close(); err != nil {
			return 1, "", err
		}
		if err := os.WriteFile(out, z.Bytes(), 0o600); err != nil {
			return 1, "", err
		}
		res, _ := json.Marshal(archive.PackResult{TarBytes: int64(len(data)), ArchiveBytes: int64(z.Len()), Entries: len(files)})
		return 0, string(res) + "\n", nil
	}
	in, err := f.hostPath(id, pos[0])
	if err != nil {
		return 1, "", err
	}
	b, err := os.ReadFile(in)
	sum := sha256.Sum256(b)
	if err != nil || strconv.Itoa(len(b)) != flags["--size"] || hex.EncodeToString(sum[:]) != flags["--sha256"] {
		return helper.ExitNotShared, notShared, nil
	}
	vol, err := f.mounted(id, pos[1])
	if err != nil {
		return 1, "", err
	}
	dec, err := archive.NewDecoder(bytes.NewReader(b))
	if err != nil {
		return 1, "", err
	}
	defer dec.Close()
	data, err := io.ReadAll(dec)
	if err != nil {
		return 1, "", err
	}
	if _, err := archive.CheckTar(bytes.NewReader(data), archive.SafetyOptions{AllowDevices: flags["--allow-devices"] != ""}); err != nil {
		return 1, "helper: " + err.Error(), nil
	}
	files, err := ReadTar(data)
	if err != nil {
		return 1, "", err
	}
	f.mu.Lock()
	f.files[vol] = files
	f.unpacked = append(f.unpacked, vol)
	f.mu.Unlock()
	return 0, fmt.Sprintf(`{"entries":%d,"files":%d,"bytes":0,"duration_ns":1}`+"\n", len(files), len(files)), nil
}

// freeBytes is the free space the fake's space probe reports; f.mu is
// held.
func (f *Fake) freeBytes() int64 {
	if f.Free != 0 {
		return f.Free
	}
	return 1 << 40
}
