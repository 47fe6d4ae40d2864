package archive

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// mixed returns n bytes alternating 256 KiB of random and 256 KiB of text,
// starting at offset phase of that pattern.
func mixed(n, phase int) []byte {
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 5000)[:256<<10]
	out := make([]byte, 0, n)
	for i := phase; len(out) < n; i++ {
		if (i/(256<<10))%2 == 0 {
			out = append(out, byte(rng.UintN(256)))
		} else {
			out = append(out, text[i%(256<<10)])
		}
	}
	return out
}

func decodeAll(t *testing.T, b []byte) []byte {
	t.Helper()
	dec, err := NewDecoder(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out, err := io.ReadAll(dec)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return out
}

// writeChunks writes data in uneven pieces, calling Boundary at each offset
// in marks.
func writeChunks(t *testing.T, enc *Encoder, data []byte, marks []int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 1))
	pos := 0
	for pos < len(data) {
		end := min(len(data), pos+1+rng.IntN(3<<20))
		for _, m := range marks {
			if m > pos && m < end {
				end = m
				break
			}
		}
		if n, err := enc.Write(data[pos:end]); err != nil || n != end-pos {
			t.Fatalf("write: %d, %v", n, err)
		}
		pos = end
		for _, m := range marks {
			if m == pos {
				enc.Boundary()
			}
		}
	}
}

// encodeChecked compresses data with boundaries at marks, checks that it
// decodes to data again and returns the compressed stream.
func encodeChecked(t *testing.T, data []byte, marks []int) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := NewEncoder(&buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	writeChunks(t, enc, data, marks)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := enc.Write([]byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
	if got := decodeAll(t, buf.Bytes()); !bytes.Equal(got, data) {
		t.Fatalf("%d bytes, marks %v: decoded %d bytes that differ from the input", len(data), marks, len(got))
	}
	return buf.Bytes()
}

func TestEncoderRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, blockSize + 3, frameSize - 1, frameSize, frameSize + 1, 3*frameSize + 12345} {
		data := mixed(n, 1000)
		for _, marks := range [][]int{nil, {1, blockSize, frameSize - 10, frameSize + 200, 2*frameSize + 7, n}} {
			encodeChecked(t, data, marks)
		}
	}
}

// A boundary where a file's contents begin keeps each block to one kind of
// data, also in the frames after the first: the stream gets smaller.
func TestEncoderBoundaryAlignsBlocks(t *testing.T) {
	const header = 1536 // a tar header and some small files before the file
	file := mixed(3*frameSize, 0)
	data := append(bytes.Repeat([]byte("h"), header), file...)
	plain, marked := len(encodeChecked(t, data, nil)), len(encodeChecked(t, data, []int{header}))
	// Measured: 0.58 % smaller; 0.19 % when only the first frame's
	// blocks were aligned (frames cut every frameSize bytes).
	if saved := float64(plain-marked) / float64(plain); saved < 0.004 {
		t.Fatalf("with a boundary at the file's start the stream has %d bytes, without %d: blocks in later frames are not aligned to it", marked, plain)
	}
	t.Logf("%d bytes without the boundary, %d with (%.3f %%)", plain, marked, 100*float64(plain-marked)/float64(plain))
}

type failingWriter struct{ left int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errors.New("disk full")
	}
	w.left -= len(p)
	return len(p), nil
}

// A failing destination stops the stream with its error, and neither Write
// nor Close hangs.
func TestEncoderWriteError(t *testing.T) {
	enc, err := NewEncoder(&failingWriter{left: 1 << 20}, 0)
	if err != nil {
		t.Fatal(err)
	}
	data := mixed(frameSize, 0)
	var werr error
	for range 20 {
		if _, werr = enc.Write(data); werr != nil {
			break
		}
	}
	cerr := enc.Close()
	if werr == nil && cerr == nil {
		t.Fatal("no error from a destination that failed")
	}
	for _, err := range []error{werr, cerr} {
		if err != nil && err.Error() != "disk full" {
			t.Fatalf("error %v, want the destination's", err)
		}
	}
}

func TestEncoderLevel(t *testing.T) {
	if _, err := NewEncoder(io.Discard, 23); err == nil {
		t.Fatal("level 23 accepted")
	}
}
