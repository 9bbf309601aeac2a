package scenario

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// ParseSize reads a byte size: "512B", "1KiB", "1.5MiB", "1KB" (1000),
// "4096" (bytes). Units are those of go-humanize: B, KB/KiB, MB/MiB, GB/GiB...
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty size")
	}
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size (e.g. 512B, 1KiB, 1MB): %w", s, err)
	}
	if n > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(n), nil
}

// FormatSize writes n in the largest binary unit that divides it exactly:
// 1024 -> "1KiB", 1500 -> "1500B".
func FormatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for i < len(units)-1 && n != 0 && n%1024 == 0 {
		n /= 1024
		i++
	}
	return strconv.FormatInt(n, 10) + units[i]
}

// ParseRate reads a rate in messages per second: "2000", "2000/s", "2k",
// "1.5M", or "max" / "unbounded" / "0" for no limit (returned as 0).
func ParseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "max", "unbounded":
		return 0, nil
	}
	num := strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(s, "/s"), "msg"))
	mult := 1.0
	switch {
	case strings.HasSuffix(num, "k") || strings.HasSuffix(num, "K"):
		mult, num = 1e3, num[:len(num)-1]
	case strings.HasSuffix(num, "M"):
		mult, num = 1e6, num[:len(num)-1]
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a rate (e.g. 2000, 2k, 5000/s, max)", s)
	}
	v *= mult
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return v, nil
}

// FormatRate writes a rate for reports: 0 -> "max", 2000 -> "2000/s",
// 25000 -> "25k/s".
func FormatRate(r float64) string {
	switch {
	case r <= 0:
		return "max"
	case r >= 1e6 && math.Mod(r, 1e5) == 0:
		return strconv.FormatFloat(r/1e6, 'f', -1, 64) + "M/s"
	case r >= 1e4 && math.Mod(r, 100) == 0:
		return strconv.FormatFloat(r/1e3, 'f', -1, 64) + "k/s"
	}
	return strconv.FormatFloat(r, 'f', -1, 64) + "/s"
}

// ParseDuration reads a Go duration ("30s", "1m30s", "250ms"); a bare "0" is
// zero. Numbers without a unit are rejected: "30" could mean anything.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return 0, fmt.Errorf("%q has no unit (e.g. %ss or %sms)", s, s, s)
		}
		return 0, fmt.Errorf("%q is not a duration (e.g. 30s, 1m30s, 250ms)", s)
	}
	return d, nil
}
