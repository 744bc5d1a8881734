package guard

import (
	"container/list"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/time/rate"
)

// ReasonRate is the refusal reason of a request over its source's rate.
const ReasonRate = "rate_limited"

// DefaultMaxSources bounds the sources Sources tracks when none is given:
// a few MB of buckets at most.
const DefaultMaxSources = 10000

// Sources is a token bucket per source address: each source may make
// perSecond requests a second on average, burst at once. The buckets of
// at most maxSources sources are kept, the least recently seen forgotten
// first; a forgotten source starts again with a full bucket, which is
// only what a new source gets anyway.
type Sources struct {
	limit rate.Limit
	burst int
	max   int

	mu  sync.Mutex
	lru *list.List // of *source, most recently seen first
	idx map[string]*list.Element
}

type source struct {
	key string
	lim *rate.Limiter
}

// NewSources returns a limiter of perSecond requests a second with bursts
// of burst (at least 1) per source; maxSources <= 0 means
// DefaultMaxSources. A perSecond of rate.Inf allows everything.
func NewSources(perSecond rate.Limit, burst, maxSources int) *Sources {
	if maxSources <= 0 {
		maxSources = DefaultMaxSources
	}
	return &Sources{limit: perSecond, burst: max(burst, 1), max: maxSources, lru: list.New(), idx: map[string]*list.Element{}}
}

// Allow reports whether a request from remoteAddr (an http.Request's
// RemoteAddr, host:port) may go on now, and takes its token if so.
func (s *Sources) Allow(remoteAddr string) bool {
	if s.limit == rate.Inf {
		return true
	}
	return s.AllowKey(sourceOf(remoteAddr).String())
}

// AllowKey is Allow for a source named by key rather than by its address
// (the relay limits each site controller by its node id).
func (s *Sources) AllowKey(key string) bool {
	if s.limit == rate.Inf {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var src *source
	if el, ok := s.idx[key]; ok {
		s.lru.MoveToFront(el)
		src = el.Value.(*source)
	} else {
		src = &source{key: key, lim: rate.NewLimiter(s.limit, s.burst)}
		s.idx[key] = s.lru.PushFront(src)
		for s.lru.Len() > s.max {
			old := s.lru.Remove(s.lru.Back()).(*source)
			delete(s.idx, old.key)
		}
	}
	return src.lim.Allow()
}

// Len is the number of sources tracked.
func (s *Sources) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// sourceOf is the bucket key of a peer: its IPv4 address, or the /64 of
// its IPv6 address (one subscriber's block). An address that does not
// parse (not from a TCP peer) shares one bucket with every other such.
func sourceOf(remoteAddr string) netip.Prefix {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}
