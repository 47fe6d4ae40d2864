package helper

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"

	"github.com/docker-autobackup/docker-autobackup/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// The index file: magic, then uvarint start time and entry count, then per
// entry the path and the source's inode, size, mtime, ctime and mode; a
// CRC-32C of everything before it closes the file. Anything that does not
// check out is treated as no index at all.

const indexMagic = "autobackup-sync-index-1\n"

type indexEntry struct {
	Ino   uint64
	Size  int64
	Mtime int64
	Ctime int64
	Mode  uint32
}

func entryOf(st *unix.Stat_t) indexEntry {
	return indexEntry{Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Mode: st.Mode}
}

type index struct {
	started int64
	entries map[string]indexEntry
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func encodeIndex(idx index) []byte {
	b := make([]byte, 0, 64+len(idx.entries)*64)
	b = append(b, indexMagic...)
	b = binary.AppendVarint(b, idx.started)
	b = binary.AppendUvarint(b, uint64(len(idx.entries)))
	paths := make([]string, 0, len(idx.entries))
	for p := range idx.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		e := idx.entries[p]
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
		b = binary.AppendUvarint(b, e.Ino)
		b = binary.AppendVarint(b, e.Size)
		b = binary.AppendVarint(b, e.Mtime)
		b = binary.AppendVarint(b, e.Ctime)
		b = binary.AppendUvarint(b, uint64(e.Mode))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

var errBadIndex = errors.New("malformed index")

func decodeIndex(b []byte) (index, error) {
	if len(b) < len(indexMagic)+4 || !bytes.HasPrefix(b, []byte(indexMagic)) {
		return index{}, errBadIndex
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return index{}, errBadIndex
	}
	r := body[len(indexMagic):]
	bad := false
	uv := func() uint64 {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			bad = true
			return 0
		}
		r = r[n:]
		return v
	}
	sv := func() int64 {
		v, n := binary.Varint(r)
		if n <= 0 {
			bad = true
			return 0
		}
		r = r[n:]
		return v
	}
	idx := index{started: sv()}
	count := uv()
	if bad || count > uint64(len(r)) {
		return index{}, errBadIndex
	}
	idx.entries = make(map[string]indexEntry, count)
	for range count {
		n := uv()
		if bad || n > uint64(len(r)) {
			return index{}, errBadIndex
		}
		p := string(r[:n])
		r = r[n:]
		e := indexEntry{Ino: uv(), Size: sv(), Mtime: sv(), Ctime: sv(), Mode: uint32(uv())}
		if bad {
			return index{}, errBadIndex
		}
		idx.entries[p] = e
	}
	if len(r) != 0 {
		return index{}, errBadIndex
	}
	return idx, nil
}

// readIndex never fails: a missing or unreadable index is an empty one, which
// makes every file look changed.
func readIndex(path string) (index, string) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return index{}, "missing"
	}
	if err != nil {
		return index{}, "invalid"
	}
	idx, err := decodeIndex(b)
	if err != nil {
		return index{}, "invalid"
	}
	return idx, "ok"
}

// writeIndex replaces the index atomically: temp file, fsync, rename, fsync
// of the directory.
func writeIndex(path string, idx index) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, encodeIndex(idx), 0o600)
}

// removeDurably removes path (a file or, if a stray one, an empty directory)
// and makes the removal durable.
func removeDurably(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
