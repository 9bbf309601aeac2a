package producer_test

import (
	"cmp"
	"slices"

	"github.com/brokerlab/brokerlab/history"
)

// reorderedIn counts, per partition, acked messages written after a
// message of the same producer with a higher sequence number: the
// checker's "reordered", read from the offsets the acks gave.
func reorderedIn(sends []history.Send) map[int32]int {
	type pos struct {
		offset, seq int64
	}
	logs := map[[2]int32][]pos{}
	for _, s := range sends {
		if s.Outcome == history.Acked && s.Offset >= 0 {
			k := [2]int32{s.Producer, s.Partition}
			logs[k] = append(logs[k], pos{s.Offset, s.Seq})
		}
	}
	out := map[int32]int{}
	for k, l := range logs {
		slices.SortFunc(l, func(a, b pos) int { return cmp.Compare(a.offset, b.offset) })
		top := int64(-1)
		for _, e := range l {
			if e.seq < top {
				out[k[1]]++
			}
			top = max(top, e.seq)
		}
	}
	return out
}
