package dmi

import (
	"context"
	"math"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// limiter is a token bucket shared by every DMI request: rate tokens a
// second up to burst. edgecore fixes it at 1 request/s with a burst of 100,
// which a handful of mappers reporting every second exceed; here both are
// configured.
type limiter struct {
	rate  float64 // tokens a second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// allow takes a token if one is left at now.
func (l *limiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = math.Min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// intercept refuses a request over the limit with ResourceExhausted; the
// text says "too many requests", as edgecore's does.
func (l *limiter) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !l.allow(time.Now()) {
		return nil, status.Errorf(codes.ResourceExhausted, "%s refused because of too many requests (modules.devices.dmiRate %g/s, dmiBurst %g)",
			info.FullMethod, l.rate, l.burst)
	}
	return handler(ctx, req)
}
