package historytest

import (
	"sync"
	"testing"

	"github.com/brokerlab/brokerlab/history"
)

func TestLogKeepsEveryEventAndCopies(t *testing.T) {
	var l Log
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { l.Send(history.Send{Seq: int64(i)}) })
		wg.Go(func() { l.Receive(history.Receive{Seq: int64(i)}) })
	}
	wg.Wait()
	sends, recvs := l.Events()
	if len(sends) != 50 || len(recvs) != 50 {
		t.Fatalf("%d sends, %d receives, want 50 each", len(sends), len(recvs))
	}
	sends[0].Seq = -1
	if again, _ := l.Events(); again[0].Seq == -1 {
		t.Fatal("Events returned the log's own slice")
	}
}
