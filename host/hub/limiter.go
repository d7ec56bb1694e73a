package hub

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// limiter is a token bucket that delays, never drops: wait returns once a
// token is free (or ctx ends). It is edgecore's upstream limit.
type limiter struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newLimiter(qps float64, burst int) *limiter {
	return &limiter{rate: qps, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// wait takes one token, sleeping until there is one.
func (l *limiter) wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		now := time.Now()
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		l.last = now
		if l.tokens >= 1 {
			l.tokens--
			l.mu.Unlock()
			return nil
		}
		delay := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		l.mu.Unlock()
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// backoff is exponential backoff with full jitter: the n-th wait is
// uniform in [0, min(max, base·2^n)).
type backoff struct {
	base, max time.Duration
	n         int
}

func (b *backoff) next() time.Duration {
	ceil := b.max
	if b.n < 30 {
		ceil = min(b.max, b.base<<b.n)
	}
	b.n++
	return time.Duration(rand.Int64N(int64(ceil)) + 1)
}

func (b *backoff) reset() { b.n = 0 }
