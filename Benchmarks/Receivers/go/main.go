// Go's os/signal, as its documentation shows it: signal.Notify on a channel with a buffer of one, and the
// main goroutine ranging over the channel. User code sees the signal when the loop body runs.
//
//	bench-go SHM
//
// The receiver's end of the benchmark's shared page (Benchmarks/Sources/CBench: cbench_seen) in Go, with
// syscall.Mmap on the same /dev/shm file and sync/atomic on its words; no cgo, so the Go runtime owns every
// signal, as in a usual Go program. The real-time signal is the C library's SIGRTMIN+1 (the Go runtime
// keeps SIGRTMIN, signal 34, for itself): the driver passes its number in CBENCH_RT_SIGNAL, since a Go program
// without cgo cannot ask glibc.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Offsets of the shared page; bench.c pins them with _Static_assert.
const (
	offReady      = 0
	offWakeDriver = 8
	slotBase      = 64
	slotSize      = 64
	fieldReceived = 0
	fieldRecvNs   = 8
	fieldFirstNs  = 32
	pageSize      = 4096
	futexWake     = 1
)

// nanotime is the runtime's CLOCK_MONOTONIC reading through the vDSO: the clock the other receivers stamp
// with, without the cost of a system call that syscall.Syscall(SYS_CLOCK_GETTIME) would add before the stamp.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

type page []byte

func (p page) word(offset int) *uint64 { return (*uint64)(unsafe.Pointer(&p[offset])) }

// seen follows cbench_seen's order: stamp, recv_ns (and first_ns), then received (sync/atomic stores are
// sequentially consistent, at least the release the driver needs), then a futex wake when the driver sleeps.
func (p page) seen(slot int) {
	now := nanotime()
	base := slotBase + slot*slotSize
	received := p.word(base + fieldReceived)
	before := atomic.LoadUint64(received)
	atomic.StoreUint64(p.word(base+fieldRecvNs), uint64(now))
	if before == 0 {
		atomic.StoreUint64(p.word(base+fieldFirstNs), uint64(now))
	}
	atomic.StoreUint64(received, before+1)
	if atomic.LoadUint64(p.word(offWakeDriver)) != 0 {
		// A shared (not private) futex: the driver waits on the same page from another process.
		syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(received)), futexWake, 1<<31-1, 0, 0, 0)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-go: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: bench-go SHM")
	}
	rtSignal, err := strconv.Atoi(os.Getenv("CBENCH_RT_SIGNAL"))
	if err != nil {
		fail("CBENCH_RT_SIGNAL must hold the real-time signal's number: %v", err)
	}
	f, err := os.OpenFile(os.Args[1], os.O_RDWR, 0)
	if err != nil {
		fail("%v", err)
	}
	mapped, err := syscall.Mmap(int(f.Fd()), 0, pageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		fail("mmap: %v", err)
	}
	f.Close()
	p := page(mapped)

	realtime := syscall.Signal(rtSignal)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGUSR1, realtime)
	atomic.StoreUint64(p.word(offReady), 1)
	for s := range signals {
		if s == syscall.SIGUSR1 {
			p.seen(0)
		} else {
			p.seen(1)
		}
	}
}
