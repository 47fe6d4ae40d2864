package docker

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The helper image holds this very binary, so helpers run our own code
// next to the data. A static binary (CGO_ENABLED=0, what install.sh
// builds) is all the image needs. A dynamically linked one — what `go
// install` or `go build` give where gcc is installed — also needs its ELF
// interpreter and the shared libraries it links, which are taken from this
// machine: the engine runs helpers with the same kernel ABI, so the
// binary's own libc works there as it does here.

// imageFile is one file of the helper image.
type imageFile struct {
	path string // absolute, inside the image
	data []byte
	mode int64
}

// helperContent is what goes into the helper image: the files, the
// LD_LIBRARY_PATH for a dynamic binary ("" for a static one), and a short
// digest of both for the image's tag.
type helperContent struct {
	files   []imageFile
	libPath string
	digest  string
}

// helperImageContent collects the helper image's files for the running
// executable.
func helperImageContent() (*helperContent, error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("helpers run Linux binaries; this one is built for %s", runtime.GOOS)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return imageContent(exe)
}

// imageContent collects the helper image's files for the executable exe.
func imageContent(exe string) (*helperContent, error) {
	bin, err := os.ReadFile(exe)
	if err != nil {
		return nil, err
	}
	c := &helperContent{files: []imageFile{{path: helperBinary, data: bin, mode: 0o755}}}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", exe, err)
	}
	interp := ""
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return nil, fmt.Errorf("read the ELF interpreter of %s: %w", exe, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if interp != "" {
		if err := c.addDynamic(f, exe, interp); err != nil {
			return nil, fmt.Errorf("%s is dynamically linked and its libraries cannot be shipped to helpers (%w); build it static with CGO_ENABLED=0", exe, err)
		}
	}
	sum := sha256.New()
	for _, file := range c.files {
		fmt.Fprintf(sum, "%s %d %o\n", file.path, len(file.data), file.mode)
		sum.Write(file.data)
	}
	fmt.Fprintf(sum, "LD_LIBRARY_PATH=%s\n", c.libPath)
	c.digest = hex.EncodeToString(sum.Sum(nil)[:6])
	return c, nil
}

// addDynamic adds the interpreter and every shared library f needs,
// directly or through other libraries, found the way the dynamic loader
// finds them: RUNPATH/RPATH first, then the system's library folders.
func (c *helperContent) addDynamic(f *elf.File, exe, interp string) error {
	data, err := os.ReadFile(interp)
	if err != nil {
		return fmt.Errorf("interpreter %s: %w", interp, err)
	}
	c.files = append(c.files, imageFile{path: interp, data: data, mode: 0o755})
	dirs := libDirs(exe, f)
	if real, err := filepath.EvalSymlinks(interp); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	seen := map[string]bool{path.Base(interp): true}
	var libDirsUsed []string
	queue := []*elf.File{f}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		needed, err := cur.ImportedLibraries()
		if err != nil {
			return err
		}
		for _, name := range needed {
			if seen[name] {
				continue
			}
			seen[name] = true
			found := ""
			for _, d := range dirs {
				p := filepath.Join(d, name)
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
					found = p
					break
				}
			}
			if found == "" {
				return fmt.Errorf("shared library %s not found in %s", name, strings.Join(dirs, ", "))
			}
			// Skip a library that is the interpreter under another name.
			if same(found, interp) {
				continue
			}
			data, err := os.ReadFile(found)
			if err != nil {
				return err
			}
			c.files = append(c.files, imageFile{path: found, data: data, mode: 0o755})
			if !slices.Contains(libDirsUsed, filepath.Dir(found)) {
				libDirsUsed = append(libDirsUsed, filepath.Dir(found))
			}
			lib, err := elf.NewFile(bytes.NewReader(data))
			if err != nil {
				return fmt.Errorf("read %s: %w", found, err)
			}
			queue = append(queue, lib)
		}
	}
	c.libPath = strings.Join(libDirsUsed, ":")
	return nil
}

func same(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// libDirs returns where the loader looks for f's libraries.
func libDirs(exe string, f *elf.File) []string {
	var dirs []string
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		vals, _ := f.DynString(tag)
		for _, v := range vals {
			for _, d := range strings.Split(v, ":") {
				d = strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(exe))
				if d != "" {
					dirs = append(dirs, d)
				}
			}
		}
	}
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "arm": "arm-linux-gnueabihf", "386": "i386-linux-gnu", "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu"}[runtime.GOARCH]
	if triplet != "" {
		dirs = append(dirs, "/lib/"+triplet, "/usr/lib/"+triplet)
	}
	return append(dirs, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
}

// tarball returns the image's files as a tar stream, with their parent
// directories.
func (c *helperContent) tarball() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	dirs := map[string]bool{}
	for _, f := range c.files {
		var parents []string
		for d := path.Dir(f.path); d != "/" && d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			dirs[parents[i]] = true
			if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(parents[i], "/") + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: now}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(f.path, "/"), Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg, ModTime: now}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
