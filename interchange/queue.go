package interchange

import (
	"math"
	"time"
)

// Item is one task waiting for a manager, already encoded as a wire.Task
// so that the interchange never re-encodes it.
type Item struct {
	ID  int64
	Try int
	// Priority follows Parsl: a lower value goes first, and 0 (unset) goes
	// after every task that has a priority.
	Priority int
	// Walltime is the task's walltime (0 = none); a manager whose block
	// ends sooner does not get it.
	Walltime time.Duration
	// Bash marks a task that generic pools can run (a command line).
	Bash bool
	// Payload is the CBOR encoding of the wire.Task.
	Payload []byte
}

func (it *Item) key() int64 {
	if it.Priority == 0 {
		return math.MaxInt64
	}
	return int64(it.Priority)
}

// queue is a binary min-heap ordered by (priority key, task ID): FIFO by
// task ID within a priority, as in Parsl. It is written out instead of
// using container/heap to avoid boxing an Item per operation on the hot
// path.
type queue struct {
	items []Item
}

func less(a, b *Item) bool {
	ka, kb := a.key(), b.key()
	if ka != kb {
		return ka < kb
	}
	return a.ID < b.ID
}

// Len returns the number of queued items.
func (q *queue) Len() int { return len(q.items) }

func (q *queue) push(it Item) {
	q.items = append(q.items, it)
	i := len(q.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(&q.items[i], &q.items[p]) {
			break
		}
		q.items[i], q.items[p] = q.items[p], q.items[i]
		i = p
	}
}

func (q *queue) pop() Item {
	n := len(q.items) - 1
	top := q.items[0]
	q.items[0] = q.items[n]
	q.items[n] = Item{} // drop the payload reference
	q.items = q.items[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && less(&q.items[r], &q.items[l]) {
			c = r
		}
		if !less(&q.items[c], &q.items[i]) {
			break
		}
		q.items[i], q.items[c] = q.items[c], q.items[i]
		i = c
	}
	if n == 0 && cap(q.items) > 1<<16 {
		q.items = nil // give a large burst's memory back
	}
	return top
}

// drain removes and returns every item.
func (q *queue) drain() []Item {
	out := q.items
	q.items = nil
	return out
}
