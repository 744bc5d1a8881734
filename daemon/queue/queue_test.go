package queue

import (
	"slices"
	"sync"
	"testing"
)

func TestQueueOrderAndWake(t *testing.T) {
	q := New[int]()
	select {
	case <-q.Wake():
		t.Fatal("woken before any push")
	default:
	}
	for i := range 5 {
		q.Push(i)
	}
	if q.Len() != 5 {
		t.Fatalf("Len = %d, want 5", q.Len())
	}
	<-q.Wake() // one pending wake for five pushes
	select {
	case <-q.Wake():
		t.Fatal("more than one pending wake")
	default:
	}
	if v, ok := q.Pop(); !ok || v != 0 {
		t.Fatalf("Pop = %d, %v; want 0, true", v, ok)
	}
	select {
	case <-q.Wake(): // Pop leaves a wake while items remain
	default:
		t.Fatal("Pop with items left did not re-signal")
	}
	if got := q.Drain(); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Fatalf("Drain = %v", got)
	}
	if _, ok := q.Pop(); ok {
		t.Fatal("Pop on an empty queue")
	}
	if q.Len() != 0 || q.Drain() != nil {
		t.Fatal("not empty after Drain")
	}
}

func TestQueueConcurrent(t *testing.T) {
	q := New[int]()
	const producers, each = 4, 1000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				q.Push(p*each + i)
			}
		}()
	}
	seen := map[int]bool{}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished || q.Len() > 0; {
		select {
		case <-q.Wake():
		case <-done:
			finished = true
		}
		for _, v := range q.Drain() {
			if seen[v] {
				t.Fatalf("%d delivered twice", v)
			}
			seen[v] = true
		}
	}
	if len(seen) != producers*each {
		t.Fatalf("got %d items, want %d", len(seen), producers*each)
	}
}
