package storage

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// epochEntry says that leader epoch Epoch starts at offset Start. A log's
// entries have strictly increasing epochs and non-decreasing starts (Kafka's
// leader epoch cache).
type epochEntry struct {
	Epoch int32
	Start int64
}

// epochCache is the list of epoch starts. It is not safe for concurrent use;
// the log guards it.
type epochCache []epochEntry

func (c epochCache) latest() int32 {
	if len(c) == 0 {
		return -1
	}
	return c[len(c)-1].Epoch
}

// assign records that epoch begins at start when it is newer than the latest.
// Negative epochs (batches never stamped by a leader) are not recorded.
func (c epochCache) assign(epoch int32, start int64) (epochCache, bool) {
	if epoch < 0 || epoch <= c.latest() {
		return c, false
	}
	return append(c, epochEntry{epoch, start}), true
}

// endOffset implements Log.EpochEndOffset over the cache.
func (c epochCache) endOffset(epoch int32, logEnd int64) (int32, int64) {
	i := len(c) - 1
	for i >= 0 && c[i].Epoch > epoch {
		i--
	}
	switch {
	case i < 0:
		return -1, -1
	case i == len(c)-1:
		return c[i].Epoch, logEnd
	default:
		return c[i].Epoch, c[i+1].Start
	}
}

// truncateFrom drops the epochs that start at or after offset.
func (c epochCache) truncateFrom(offset int64) (epochCache, bool) {
	n := len(c)
	for n > 0 && c[n-1].Start >= offset {
		n--
	}
	return c[:n], n != len(c)
}

// truncateBefore drops epochs that end before the new log start and moves
// the start of the one that spans it to start.
func (c epochCache) truncateBefore(start int64) (epochCache, bool) {
	i := 0
	for i+1 < len(c) && c[i+1].Start <= start {
		i++
	}
	if len(c) == 0 || c[0].Start >= start {
		return c, false
	}
	out := append(epochCache{}, c[i:]...)
	out[0].Start = start
	return out, true
}

// The checkpoint file is Kafka's leader-epoch-checkpoint format: a version
// line "0", a count line, then one "epoch start-offset" line per entry.
const epochCheckpointVersion = 0

func encodeEpochs(c epochCache) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n%d\n", epochCheckpointVersion, len(c))
	for _, e := range c {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.Start)
	}
	return b.Bytes()
}

// decodeEpochs parses a checkpoint and checks that it is well formed:
// version 0, the stated count, increasing epochs, non-decreasing offsets.
func decodeEpochs(data []byte) (epochCache, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	next := func() (string, bool) {
		line++
		if !sc.Scan() {
			return "", false
		}
		return strings.TrimSpace(sc.Text()), true
	}
	v, ok := next()
	if !ok || v != strconv.Itoa(epochCheckpointVersion) {
		return nil, fmt.Errorf("line %d: want version %d, got %q", line, epochCheckpointVersion, v)
	}
	s, ok := next()
	n, err := strconv.Atoi(s)
	if !ok || err != nil || n < 0 || n > len(data) {
		return nil, fmt.Errorf("line %d: bad entry count %q", line, s)
	}
	c := make(epochCache, 0, n)
	for range n {
		s, ok := next()
		f := strings.Fields(s)
		if !ok || len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"epoch offset\", got %q", line, s)
		}
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || o < 0 {
			return nil, fmt.Errorf("line %d: bad entry %q", line, s)
		}
		if len(c) > 0 && (int32(e) <= c.latest() || o < c[len(c)-1].Start) {
			return nil, fmt.Errorf("line %d: entry %q out of order", line, s)
		}
		c = append(c, epochEntry{int32(e), o})
	}
	if s, ok := next(); ok && s != "" {
		return nil, fmt.Errorf("line %d: unexpected %q after %d entries", line, s, n)
	}
	return c, sc.Err()
}
