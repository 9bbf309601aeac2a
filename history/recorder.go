package history

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Recorder collects a run's history from every client goroutine, either
// into a Table in memory or streaming to a file (a run bounded by disk, not
// memory). Its methods are safe for concurrent use.
type Recorder struct {
	mu    sync.Mutex
	sink  sink    // table or w
	table *Table  // memory mode
	w     *Writer // file mode
	path  string

	acked, failed, consumed atomic.Int64
	// ends is one past the highest acked offset per partition (the
	// verification read must get that far).
	ends map[int32]int64
}

// NewRecorder returns a recorder that keeps the history in memory.
func NewRecorder(start time.Time) *Recorder {
	t := NewTable(start)
	return &Recorder{sink: tableSink{t}, table: t}
}

// NewFileRecorder returns a recorder that streams the history to path.
func NewFileRecorder(path string, start time.Time) (*Recorder, error) {
	w, err := Create(path, start)
	if err != nil {
		return nil, err
	}
	return &Recorder{sink: w, w: w, path: path}, nil
}

// sink is where a Recorder puts events: a Writer, or a Table through
// tableSink.
type sink interface {
	Send(Send)
	Receive(Receive)
	BeginFinal()
	Final(Receive)
	DropFinal()
}

// tableSink records into a Table.
type tableSink struct{ *Table }

func (t tableSink) Send(s Send)       { t.AddSend(s) }
func (t tableSink) Receive(r Receive) { t.AddReceive(r) }
func (t tableSink) Final(r Receive)   { t.AddFinal(r) }

// Path is the history file, "" in memory mode.
func (r *Recorder) Path() string { return r.path }

// Send records a send.
func (r *Recorder) Send(s Send) {
	if s.Outcome == Acked {
		r.acked.Add(1)
	} else {
		r.failed.Add(1)
	}
	r.mu.Lock()
	if s.Outcome == Acked && s.Offset >= 0 {
		if r.ends == nil {
			r.ends = map[int32]int64{}
		}
		r.ends[s.Partition] = max(r.ends[s.Partition], s.Offset+1)
	}
	r.sink.Send(s)
	r.mu.Unlock()
}

// Receive records a live delivery.
func (r *Recorder) Receive(m Receive) {
	r.consumed.Add(1)
	r.mu.Lock()
	r.sink.Receive(m)
	r.mu.Unlock()
}

// BeginFinal starts the verification read.
func (r *Recorder) BeginFinal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sink.BeginFinal()
}

// Final records a delivery of the verification read.
func (r *Recorder) Final(m Receive) {
	r.mu.Lock()
	r.sink.Final(m)
	r.mu.Unlock()
}

// DropFinal discards the verification read (it did not finish).
func (r *Recorder) DropFinal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sink.DropFinal()
}

// AckedEnds returns, by partition, one past the highest offset an ack
// reported so far.
func (r *Recorder) AckedEnds() map[int32]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int32]int64, len(r.ends))
	for p, e := range r.ends {
		out[p] = e
	}
	return out
}

// Counts returns the sends acked, the sends failed or unknown and the live
// receives so far.
func (r *Recorder) Counts() (acked, failed, consumed int64) {
	return r.acked.Load(), r.failed.Load(), r.consumed.Load()
}

// Finish ends recording and returns the history: in memory mode the
// table; in file mode it writes meta, closes the file and cuts it into
// shards next to it (SplitFile), so that reading it back needs the memory
// of one shard. Clients must have stopped.
func (r *Recorder) Finish(meta []byte) (Source, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w == nil {
		return r.table, nil
	}
	merr := r.w.Meta(meta)
	if err := r.w.Close(); err != nil {
		return nil, err
	}
	if merr != nil {
		return nil, merr
	}
	s, _, err := SplitFile(r.path, filepath.Dir(r.path), 0)
	if err != nil {
		if s != nil {
			s.Release()
		}
		return nil, err
	}
	return s, nil
}

// Close ends recording without reading anything back (a run that failed
// before it recorded anything worth analysing). It is idempotent.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w == nil {
		return nil
	}
	return r.w.Close()
}
