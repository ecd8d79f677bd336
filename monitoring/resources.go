package monitoring

import (
	"context"
	"fmt"
	"time"

	"github.com/parsl-go/parsl/monitoring/store"
)

// Blocks, nodes and resource samples. Executors that get blocks from a
// provider (htex) report them through these methods; the Hub implements
// htex.Monitor with them, and parsl.Load hands the run's Hub to every
// executor with a SetMonitor method.
//
// Unlike TaskEvent, these methods go straight to the store's queue: they
// return as soon as the row is queued, and block only while that queue is
// full (the database is behind), until ctx ends. A caller on a path that
// must not wait calls them from a goroutine of its own, as htex does, and
// counts the rows it gives up on. The returned error says the row was not
// accepted: ctx ended first, or the Hub is closed.

// Block records a block's change of state (a row of Parsl's block table).
// RunID is the Hub's; a zero Timestamp is now.
func (h *Hub) Block(ctx context.Context, b store.Block) error {
	b.RunID = h.opts.RunID
	if b.Timestamp.IsZero() {
		b.Timestamp = time.Now()
	}
	return h.enqueueRow(ctx, &b, func() string { return "block " + b.BlockID })
}

// Node records a worker pool joining or leaving (a row of Parsl's node
// table). RunID is the Hub's; zero times are now.
func (h *Hub) Node(ctx context.Context, n store.Node) error {
	n.RunID = h.opts.RunID
	n.ID = 0 // assigned by the database
	now := time.Now()
	if n.Timestamp.IsZero() {
		n.Timestamp = now
	}
	if n.LastHeartbeat.IsZero() {
		n.LastHeartbeat = n.Timestamp
	}
	return h.enqueueRow(ctx, &n, func() string { return "node " + n.Hostname })
}

// Resource records one resource sample of a try (a row of Parsl's
// resource table). RunID is the Hub's.
func (h *Hub) Resource(ctx context.Context, r store.Resource) error {
	r.RunID = h.opts.RunID
	if r.Timestamp.IsZero() {
		r.Timestamp = time.Now()
	}
	return h.enqueueRow(ctx, &r, func() string { return fmt.Sprintf("resource sample of task %d", r.TaskID) })
}

// enqueueRow queues rec; what names it in the error, and is only called
// then: samples arrive by the thousand and almost always succeed.
func (h *Hub) enqueueRow(ctx context.Context, rec store.Record, what func() string) error {
	if err := h.st.Enqueue(ctx, rec); err != nil {
		return fmt.Errorf("monitoring: %s not recorded: %w", what(), err)
	}
	return nil
}
