package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// SyncedFile is the record of synced lengths a log keeps in its directory
// when Config.RecordSynced is set: for every segment's .log file, how many
// bytes the last fsync covered. It is what a machine that loses power
// would keep of each file, so a runtime that can only kill a process
// (docker: SIGKILL) simulates a power loss by cutting each .log to its
// recorded length before the node starts again (CutLength). Recovery does
// the rest (indexes are rebuilt, a short segment ends the log).
//
// The format is text, one segment per line after a header:
//
//	brokerlab synced-lengths v1
//	00000000000000000000.log 123456
//
// The file is replaced atomically (temporary file and rename, no fsync: a
// killed process loses nothing the kernel holds) whenever a length changes.
const SyncedFile = "synced-lengths"

const syncedHeader = "brokerlab synced-lengths v1"

// syncedRecorder writes a log's record; mu orders writers, last skips
// rewrites of an unchanged record.
type syncedRecorder struct {
	mu   sync.Mutex
	last string
}

// recordSynced rewrites the record if a synced length changed. The caller
// holds l.mu (read or write).
func (l *segmentedLog) recordSynced() {
	if !l.cfg.RecordSynced || !l.be.durable() || l.cfg.Dir == "" {
		return
	}
	var b strings.Builder
	b.WriteString(syncedHeader + "\n")
	for _, s := range l.segs {
		fmt.Fprintf(&b, "%s %d\n", segmentName(s.base, logSuffix), s.synced.Load())
	}
	text := b.String()
	r := &l.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	if text == r.last {
		return
	}
	path := filepath.Join(l.cfg.Dir, SyncedFile)
	tmp := path + tmpSuffix
	err := os.WriteFile(tmp, []byte(text), 0o644)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		l.logger.Error("cannot record synced lengths", "dir", l.cfg.Dir, "error", err)
		return
	}
	r.last = text
}

// SyncedLengths is a parsed SyncedFile: .log file name -> synced bytes.
type SyncedLengths map[string]int64

// ParseSyncedLengths reads a SyncedFile.
func ParseSyncedLengths(data []byte) (SyncedLengths, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() || sc.Text() != syncedHeader {
		return nil, errors.New("storage: not a synced-lengths record")
	}
	out := SyncedLengths{}
	for n := 2; sc.Scan(); n++ {
		name, num, ok := strings.Cut(sc.Text(), " ")
		if _, isLog := parseSegmentName(name, logSuffix); !ok || !isLog {
			return nil, fmt.Errorf("storage: synced-lengths line %d: want \"<segment>.log <bytes>\"", n)
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("storage: synced-lengths line %d: bad length %q", n, num)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("storage: synced-lengths: %w", err)
	}
	return out, nil
}

// CutLength is what a power loss leaves of the file name (a base name in
// the partition directory) of size bytes: a .log keeps its synced length,
// one the record does not know (created after it was written) keeps
// nothing; other files keep everything (indexes and the epoch checkpoint
// are repaired by recovery).
func (s SyncedLengths) CutLength(name string, size int64) int64 {
	if _, ok := parseSegmentName(name, logSuffix); !ok {
		return size
	}
	return min(size, s[name])
}
