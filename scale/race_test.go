//go:build race

package scale

// raceOn: the race detector slows every goroutine several times.
const raceOn = true
