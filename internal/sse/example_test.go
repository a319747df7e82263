package sse_test

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/herald-chat/herald/internal/sse"
)

// An event's data suits being parsed at once: json.Unmarshal copies what it
// keeps, so nothing refers to the data after the next call overwrites it.
// Data kept as it is must be copied, as the last event's is here.
func ExampleReader_Next() {
	rd := sse.NewReader(strings.NewReader("data: {\"n\":1}\n\ndata: {\"n\":2}\n\nevent: bye\ndata: done\n\n"))
	var last string
	for {
		ev, err := rd.Next()
		if err != nil {
			break
		}
		if ev.Name == "bye" {
			last = string(ev.Data) // a copy: ev.Data is valid only until the next call
			continue
		}
		var v struct{ N int }
		if err := json.Unmarshal(ev.Data, &v); err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(v.N)
	}
	fmt.Println(last)
	// Output:
	// 1
	// 2
	// done
}
