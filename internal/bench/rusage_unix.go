//go:build unix

package bench

import (
	"os"
	"runtime"
	"syscall"
)

// peakRSS is the peak resident set size of an exited child process, in
// bytes (0 if the OS does not say).
func peakRSS(ps *os.ProcessState) uint64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0
	}
	return maxrssBytes(int64(ru.Maxrss)) // int32 on some 32-bit systems
}

// selfPeakRSS is this process's peak resident set size so far, in bytes.
func selfPeakRSS() uint64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return maxrssBytes(int64(ru.Maxrss)) // int32 on some 32-bit systems
}

// maxrssBytes converts ru_maxrss to bytes: Linux and the BSDs count KiB,
// Darwin bytes.
func maxrssBytes(v int64) uint64 {
	if v < 0 {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return uint64(v)
	}
	return uint64(v) << 10
}
