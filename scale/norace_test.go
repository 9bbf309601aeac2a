//go:build !race

package scale

const raceOn = false
