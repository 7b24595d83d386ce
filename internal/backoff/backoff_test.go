package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayBounds(t *testing.T) {
	base, maxD := 100*time.Millisecond, time.Second
	for attempt := 1; attempt <= 40; attempt++ {
		want := min(base<<min(attempt-1, 20), maxD)
		for range 50 {
			d := Delay(base, maxD, attempt)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %v, want between %v and %v", attempt, d, want/2, want)
			}
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context: %v", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
