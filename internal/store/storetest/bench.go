package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/store"
)

// Conversations is how many conversations the journal benchmark spreads
// its turns over.
const Conversations = 1000

// BenchJournal measures a store under the gateway's load: each operation
// is one turn's journal writes (received, running, shown, final, the
// exchange in the transcript, delivered) in one of Conversations
// conversations, many turns at once. It reports the writes' p50 and p99
// and the turns journalled a second.
func BenchJournal(b *testing.B, open Opener) {
	s, _ := open(b, time.Now)
	ctx := context.Background()
	var (
		next atomic.Int64
		mu   sync.Mutex
		took []time.Duration
	)
	b.SetParallelism(4) // 4 × GOMAXPROCS turns at once
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		timed := func(write func() error) {
			t0 := time.Now()
			if err := write(); err != nil {
				b.Error(err)
			}
			mine = append(mine, time.Since(t0))
		}
		for pb.Next() {
			n := next.Add(1)
			conv := fmt.Sprint("conv-", n%Conversations)
			in := chat.Inbound{Source: chat.Source{Platform: "telegram", ChatID: conv, ChatType: chat.DM, UserID: conv, MessageID: fmt.Sprint(n)},
				Text: "a question of a usual length, a line or two", EventID: fmt.Sprint("event-", n), Received: time.Now()}
			var turn store.Turn
			timed(func() (err error) { turn, err = s.Receive(ctx, "telegram:dm:"+conv, in); return err })
			timed(func() error { return s.SetTurnStatus(ctx, turn.ID, store.Running, "") })
			timed(func() error { return s.MarkShown(ctx, turn.ID) })
			timed(func() error {
				return s.SetTurnFinal(ctx, turn.ID, store.Final{Text: "an answer of a usual length, a paragraph", MessageIDs: []string{"m1"}})
			})
			timed(func() error {
				return s.Append(ctx, "session-"+conv, store.Entry{Role: chat.User, Content: in.Text}, store.Entry{Role: chat.Assistant, Content: "an answer"})
			})
			timed(func() error { return s.SetTurnStatus(ctx, turn.ID, store.Delivered, "") })
		}
		mu.Lock()
		took = append(took, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "turns/s")
}
