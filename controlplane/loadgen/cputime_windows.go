package loadgen

import (
	"errors"
	"time"

	"golang.org/x/sys/windows"
)

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var creation, exit, kernel, user windows.Filetime
	if windows.GetProcessTimes(windows.CurrentProcess(), &creation, &exit, &kernel, &user) != nil {
		return 0
	}
	// FILETIME counts 100-nanosecond intervals.
	ticks := int64(kernel.HighDateTime)<<32 | int64(kernel.LowDateTime)
	ticks += int64(user.HighDateTime)<<32 | int64(user.LowDateTime)
	return time.Duration(ticks * 100)
}

// processCPU is not implemented on Windows.
func processCPU(int) (time.Duration, error) {
	return 0, errors.New("reading another process's CPU time is implemented on Linux only")
}
