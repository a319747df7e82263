package completions

import (
	"encoding/json"
	"reflect"
	"testing"

	gojson "github.com/goccy/go-json"

	"github.com/herald-chat/herald/internal/agent"
)

// FuzzDecodeMatchesEncodingJSON checks that go-json, which decodes stream
// events, accepts and refuses the same data as encoding/json and decodes it
// to the same values, also into a chunk reused after reset as readEvents
// does.
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	f.Add([]byte(`{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi \u00e9 \ud83d\ude00"},"finish_reason":null}]}`))
	f.Add([]byte(`{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`))
	f.Add([]byte(`{"error":{"message":"boom"}}`))
	f.Add([]byte(`{"CHOICES":[{"Delta":{"Content":"x"}}]}`))
	f.Add([]byte(`{"choices":[{"delta":{"content":"\ud800 \udc00\ud800"}}]}`))
	f.Add([]byte("{\"choices\":[{\"delta\":{\"content\":\"\x80 \xed\xa0\x80\"}}]}"))
	f.Add([]byte(`{"tool":"terminal","emoji":"💻","label":"ls","status":"running","toolCallId":"c1"}`))
	earlier := []byte(`{"choices":[{"delta":{"content":"old"},"finish_reason":"length"},{"delta":{"content":"two"}}],"usage":{"total_tokens":9},"error":{"message":"e"}}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		var want, got chunk
		errWant := json.Unmarshal(data, &want)
		if err := gojson.Unmarshal(earlier, &got); err != nil {
			t.Fatal(err)
		}
		got.reset()
		errGot := gojson.Unmarshal(data, &got)
		if (errWant == nil) != (errGot == nil) {
			t.Fatalf("%q: encoding/json says %v, go-json %v", data, errWant, errGot)
		}
		if errWant == nil && !reflect.DeepEqual(normal(want), normal(got)) {
			t.Fatalf("%q: encoding/json gives %+v, go-json %+v", data, want, got)
		}
		var wantTool, gotTool agent.ToolProgress
		errWant = json.Unmarshal(data, &wantTool)
		errGot = gojson.Unmarshal(data, &gotTool)
		if (errWant == nil) != (errGot == nil) || (errWant == nil && !reflect.DeepEqual(wantTool, gotTool)) {
			t.Fatalf("%q as tool progress: encoding/json %+v (%v), go-json %+v (%v)", data, wantTool, errWant, gotTool, errGot)
		}
	})
}

// normal makes an empty Choices nil, since a reused chunk keeps its array.
func normal(c chunk) chunk {
	if len(c.Choices) == 0 {
		c.Choices = nil
	}
	return c
}
