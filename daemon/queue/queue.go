package queue

import "sync"

// Queue is an unbounded FIFO with a wake-up channel. Producers (paho
// handlers, which must never block) Push and return at once; one consumer
// waits on Wake and then Drains or Pops. Its size is bounded in practice
// by whoever acknowledges: messages are acknowledged to the broker only
// after they are handled, so the broker's in-flight window caps it.
type Queue[T any] struct {
	mu    sync.Mutex
	items []T
	wake  chan struct{}
}

// New returns an empty queue.
func New[T any]() *Queue[T] { return &Queue[T]{wake: make(chan struct{}, 1)} }

// Push appends v and wakes the consumer.
func (q *Queue[T]) Push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.signal()
}

// Wake receives a value after a Push (at most one pending): the consumer
// selects on it, then takes what is queued.
func (q *Queue[T]) Wake() <-chan struct{} { return q.wake }

// Drain returns everything queued so far, oldest first.
func (q *Queue[T]) Drain() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

// Pop returns the oldest item. If more remain it keeps Wake signalled,
// so several consumers may share the queue.
func (q *Queue[T]) Pop() (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero T
	if len(q.items) == 0 {
		return zero, false
	}
	v := q.items[0]
	q.items[0] = zero // let the GC have it
	q.items = q.items[1:]
	if len(q.items) > 0 {
		q.signal()
	}
	return v, true
}

// Len is the number of items queued.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

func (q *Queue[T]) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
