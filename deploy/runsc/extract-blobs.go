// extract-blobs recovers the two ELF objects that runsc embeds with
// go:embed (pkg/sentry/loader/vdsodata/vdso.so and
// runsc/sandbox/bpf/af_xdp_ebpf.o) from a Debian-built runsc binary.
//
// golang-gvisor-gvisor-dev ships both files as 1-byte placeholders, so a
// runsc built from it alone cannot start sandboxes. The runsc package of
// the same source version embeds the real objects; this tool finds them.
//
// Usage: go run extract-blobs.go RUNSC_BINARY OUT_VDSO OUT_XDP
//
// Each embedded object is located by its ELF magic, its length is taken
// from the []byte slice header that go:embed leaves in the data sections
// (pointer, len, cap) and cross-checked against the length implied by the
// object's own ELF headers.
package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

type blob struct {
	off, size uint64
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "extract-blobs: "+format+"\n", args...)
	os.Exit(1)
}

// elfExtent returns the number of bytes an ELF object starting at data[0]
// spans, according to its own headers.
func elfExtent(data []byte) (*elf.File, uint64, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, 0, err
	}
	var hdr struct {
		shoff     uint64
		shentsize uint16
		shnum     uint16
	}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB {
		return nil, 0, fmt.Errorf("not a 64-bit little-endian ELF")
	}
	hdr.shoff = binary.LittleEndian.Uint64(data[0x28:])
	hdr.shentsize = binary.LittleEndian.Uint16(data[0x3a:])
	hdr.shnum = binary.LittleEndian.Uint16(data[0x3c:])
	end := hdr.shoff + uint64(hdr.shentsize)*uint64(hdr.shnum)
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && s.Offset+s.FileSize > end {
			end = s.Offset + s.FileSize
		}
	}
	for _, p := range f.Progs {
		if p.Off+p.Filesz > end {
			end = p.Off + p.Filesz
		}
	}
	if end > uint64(len(data)) {
		return nil, 0, fmt.Errorf("extent %d beyond end of file", end)
	}
	return f, end, nil
}

func main() {
	if len(os.Args) != 4 {
		die("usage: extract-blobs RUNSC_BINARY OUT_VDSO OUT_XDP")
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		die("%v", err)
	}
	outer, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		die("%s: %v", os.Args[1], err)
	}
	if outer.Class != elf.ELFCLASS64 || outer.Data != elf.ELFDATA2LSB {
		die("%s: only 64-bit little-endian binaries are supported", os.Args[1])
	}

	// Data sections that may hold the []byte slice headers.
	var dataSecs [][]byte
	for _, s := range outer.Sections {
		if s.Name == ".data" || s.Name == ".noptrdata" {
			b, err := io.ReadAll(s.Open())
			if err != nil {
				die("reading %s: %v", s.Name, err)
			}
			dataSecs = append(dataSecs, b)
		}
	}
	if len(dataSecs) == 0 {
		die("no .data/.noptrdata section found")
	}

	// vaddrOf maps a file offset to a virtual address via the section
	// containing it.
	vaddrOf := func(off uint64) (uint64, bool) {
		for _, s := range outer.Sections {
			if s.Type == elf.SHT_NOBITS || s.Addr == 0 {
				continue
			}
			if off >= s.Offset && off < s.Offset+s.FileSize {
				return s.Addr + (off - s.Offset), true
			}
		}
		return 0, false
	}

	// sliceLen finds a (ptr, len, cap) slice header with ptr == vaddr and
	// len == cap, and returns len.
	sliceLen := func(vaddr uint64) (uint64, int) {
		var key [8]byte
		binary.LittleEndian.PutUint64(key[:], vaddr)
		var found uint64
		n := 0
		for _, d := range dataSecs {
			for i := 0; ; {
				j := bytes.Index(d[i:], key[:])
				if j < 0 {
					break
				}
				p := i + j
				i = p + 1
				if p%8 != 0 || p+24 > len(d) {
					continue
				}
				l := binary.LittleEndian.Uint64(d[p+8:])
				c := binary.LittleEndian.Uint64(d[p+16:])
				if l == 0 || l != c {
					continue
				}
				if n > 0 && l == found {
					continue
				}
				found = l
				n++
			}
		}
		return found, n
	}

	var vdso, xdp []blob
	magic := []byte(elf.ELFMAG)
	for i := 1; ; {
		j := bytes.Index(data[i:], magic)
		if j < 0 {
			break
		}
		off := uint64(i + j)
		i = int(off) + 1
		inner, extent, err := elfExtent(data[off:])
		if err != nil {
			continue
		}
		var isVDSO, isXDP bool
		switch {
		case inner.Type == elf.ET_DYN && inner.Machine == outer.Machine:
			isVDSO = true
		case inner.Type == elf.ET_REL && inner.Machine == elf.EM_BPF:
			isXDP = true
		default:
			continue
		}
		size := extent
		if va, ok := vaddrOf(off); ok {
			if l, n := sliceLen(va); n == 1 {
				if l != extent {
					die("object at offset %d: slice length %d != ELF extent %d", off, l, extent)
				}
				size = l
			} else {
				fmt.Fprintf(os.Stderr, "extract-blobs: warning: no unique slice header for object at offset %d (%d found); using ELF extent %d\n", off, n, extent)
			}
		}
		b := blob{off: off, size: size}
		if isVDSO {
			vdso = append(vdso, b)
		}
		if isXDP {
			xdp = append(xdp, b)
		}
	}
	if len(vdso) != 1 {
		die("expected exactly one embedded VDSO object, found %d", len(vdso))
	}
	if len(xdp) != 1 {
		die("expected exactly one embedded BPF object, found %d", len(xdp))
	}
	for _, w := range []struct {
		path string
		b    blob
	}{{os.Args[2], vdso[0]}, {os.Args[3], xdp[0]}} {
		if err := os.WriteFile(w.path, data[w.b.off:w.b.off+w.b.size], 0o644); err != nil {
			die("%v", err)
		}
		fmt.Fprintf(os.Stderr, "extract-blobs: %s: %d bytes from offset %d\n", w.path, w.b.size, w.b.off)
	}
}
