// Timing and ratios: a measurement is a command's wall time plus the CPU
// time it cost on the deployer and on the hosts; a benchmark's numbers are
// summarized as median [min–max], and compared with its baseline by the
// per-repetition (paired) ratios.

package main

import (
	"sort"
	"syscall"
	"time"
)

// meas is one measured command: wall time and the CPU time it cost on
// the deployer and on the hosts (see cpuAcct). The bench's own process is
// not the deployer: its CPU during the measurement (reading output, and
// the delay proxies of the WAN benchmark) is taken out of dep.
type meas struct{ wall, dep, hosts time.Duration }

func (m meas) cpu() float64 { return (m.dep + m.hosts).Seconds() }

func (b *bench) measure(f func() (time.Duration, error)) (meas, error) {
	d0, h0 := b.cpu.snapshot()
	s0 := selfCPU()
	wall, err := f()
	s1 := selfCPU()
	d1, h1 := b.cpu.snapshot()
	return meas{wall: wall, dep: max(0, d1-d0-(s1-s0)), hosts: h1 - h0}, err
}

// selfCPU is this process's user+sys time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type stats struct{ med, min, max float64 }

func summarize(xs []float64) stats {
	if len(xs) == 0 {
		return stats{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{med: med, min: s[0], max: s[len(s)-1]}
}

// ratios are num[i]/den[i], the paired ratios of one repetition each.
func ratios(num, den []float64) []float64 {
	var out []float64
	for i := range num {
		if i < len(den) && den[i] > 0 {
			out = append(out, num[i]/den[i])
		}
	}
	return out
}
