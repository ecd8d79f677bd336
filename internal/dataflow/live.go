package dataflow

import "sync"

// liveSet holds the tasks of a DFK that are not complete, so that a Close
// that gives up can fail every one of them instead of leaving futures that
// never complete. It is sharded by task ID because submitters and executor
// workers add and remove concurrently on the hot path.
type liveSet struct {
	shards [16]liveShard
}

type liveShard struct {
	mu   sync.Mutex
	head *Task
	_    [40]byte // keep shards on separate cache lines
}

func (l *liveSet) shard(t *Task) *liveShard { return &l.shards[uint64(t.x.ID)%16] }

func (l *liveSet) add(t *Task) {
	s := l.shard(t)
	s.mu.Lock()
	t.prev = nil
	t.next = s.head
	if s.head != nil {
		s.head.prev = t
	}
	s.head = t
	s.mu.Unlock()
}

func (l *liveSet) remove(t *Task) {
	s := l.shard(t)
	s.mu.Lock()
	if t.prev != nil {
		t.prev.next = t.next
	} else if s.head == t {
		s.head = t.next
	} else {
		s.mu.Unlock()
		return // not in the set (drained)
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next = nil, nil
	s.mu.Unlock()
}

// each calls fn for every task in the set, holding one shard's lock at a
// time.
func (l *liveSet) each(fn func(*Task)) {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for t := s.head; t != nil; t = t.next {
			fn(t)
		}
		s.mu.Unlock()
	}
}

// drain removes and returns every task in the set.
func (l *liveSet) drain() []*Task {
	var out []*Task
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for t := s.head; t != nil; {
			n := t.next
			t.prev, t.next = nil, nil
			out = append(out, t)
			t = n
		}
		s.head = nil
		s.mu.Unlock()
	}
	return out
}
