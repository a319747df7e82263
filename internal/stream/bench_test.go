package stream_test

import (
	"context"
	"fmt"
	"strings"

	"testing"

	"github.com/herald-chat/herald/internal/agent"

	"github.com/herald-chat/herald/internal/stream"
	"github.com/herald-chat/herald/internal/stream/streamtest"
)

// BenchmarkFinishLargeAnswer streams an answer of up to 20 MiB (an agent
// server gone wrong, before gateway.max_answer_bytes cuts it) in deltas of
// 100 bytes, then delivers it as the final text over 4096-character
// messages, with no budget to wait for: what is measured is the CPU the
// layout costs, which must grow linearly with the answer.
func BenchmarkFinishLargeAnswer(b *testing.B) {
	line := "Lorem ipsum dolor sit amet, **consectetur** adipiscing elit, `sed do` eiusmod tempor.\n"
	for _, mib := range []int{1, 4, 20} {
		answer := strings.Repeat(line, mib<<20/len(line))
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			b.SetBytes(int64(len(answer)))
			for b.Loop() {
				fake := streamtest.New(testCaps())
				d := stream.Start(context.Background(), stream.Params{Adapter: fake, Target: target, Options: testOptions()})
				for i := 0; i < len(answer); i += 100 {
					d.Handle(agent.Event{Kind: agent.EventDelta, Text: answer[i:min(i+100, len(answer))]})
				}
				if _, err := d.Finish(context.Background(), answer); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
