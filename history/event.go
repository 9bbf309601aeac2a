package history

import (
	"strconv"
	"time"
)

// Header keys every message carries. Values are decimal ASCII so that any
// tool can read them.
const (
	HeaderProducer = "bl-producer" // producer id
	HeaderSeq      = "bl-seq"      // per-producer sequence number, from 0
	HeaderIntended = "bl-intended" // intended send time, Unix nanoseconds
)

// Outcome of one send.
type Outcome uint8

const (
	// Acked: the system acknowledged the message at Offset.
	Acked Outcome = iota + 1
	// Failed: the system answered with an error; the message may still have
	// been written (e.g. a timeout after the leader appended it).
	Failed
	// Unknown: no answer before the run ended or the request timed out.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case Acked:
		return "acked"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Send records one message a producer attempted.
type Send struct {
	Producer  int32
	Seq       int64
	Partition int32     // partition it was sent to (last attempt)
	Intended  time.Time // from the open-loop schedule
	Sent      time.Time // when the client handed it to the network (last attempt)
	Done      time.Time // when the outcome was known
	Outcome   Outcome
	Offset    int64  // when Acked, else -1
	Err       string // when Failed or Unknown
	Attempts  int
}

// Receive records one message a consumer delivered.
type Receive struct {
	Producer  int32
	Seq       int64
	Partition int32
	Offset    int64
	Intended  time.Time
	Received  time.Time
	Consumer  int
}

// FormatInt formats a header value.
func FormatInt(v int64) []byte { return strconv.AppendInt(nil, v, 10) }

// ParseHeaders extracts producer, sequence and intended time from header
// values; ok is false when any is missing or malformed.
func ParseHeaders(get func(key string) ([]byte, bool)) (producer int32, seq int64, intended time.Time, ok bool) {
	p, ok1 := get(HeaderProducer)
	s, ok2 := get(HeaderSeq)
	t, ok3 := get(HeaderIntended)
	if !ok1 || !ok2 || !ok3 {
		return 0, 0, time.Time{}, false
	}
	pv, err1 := strconv.ParseInt(string(p), 10, 32)
	sv, err2 := strconv.ParseInt(string(s), 10, 64)
	tv, err3 := strconv.ParseInt(string(t), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, time.Time{}, false
	}
	return int32(pv), sv, time.Unix(0, tv), true
}
