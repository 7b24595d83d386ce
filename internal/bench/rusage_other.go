//go:build !unix

package bench

import "os"

// peakRSS is not known here: 0.
func peakRSS(*os.ProcessState) uint64 { return 0 }

// selfPeakRSS is not known here: 0.
func selfPeakRSS() uint64 { return 0 }
