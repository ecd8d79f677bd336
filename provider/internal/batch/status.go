package batch

import (
	"context"
	"sync"

	"github.com/parsl-go/parsl/provider"
)

// Status is the skeleton of Status that the PBS, LSF and HTCondor providers
// share, parameterised by what differs between schedulers. A job whose
// final status was remembered is answered from memory, because schedulers
// forget finished jobs; the others are asked of the queue, once per ID
// however often it is repeated; those the queue no longer lists are asked
// of the history; a job neither knows is Missing rather than assumed to
// have completed, as Parsl did.
type Status[R any] struct {
	// Lock guards what Lookup reads; it is held across all Lookup calls so
	// that they see one state.
	Lock sync.Locker
	// Lookup returns a job's remembered final status (nil if none) and
	// output paths; known is false for a job this provider did not submit.
	Lookup func(id string) (final *provider.JobStatus, stdout, stderr string, known bool)
	// Invalid returns why id cannot be a job ID of this scheduler, "" if it
	// can. Nil accepts every ID. An invalid ID is Unknown with that message
	// and never asked about.
	Invalid func(id string) string
	// Queue asks the queue about ids and returns what it lists, by ID.
	Queue func(ctx context.Context, ids []string) (map[string]R, error)
	// History asks about the jobs the queue no longer lists. Nil when the
	// scheduler keeps none. Its error is not Status's: the jobs become
	// Missing and Missing gets the error.
	History func(ctx context.Context, ids []string) (map[string]R, error)
	// Missing is the message of a job neither the queue nor the history
	// lists; histErr is the history's error, if any.
	Missing func(histErr error) string
	// Convert turns what the scheduler said about id into a status (State,
	// Message; the output paths are filled in here) and says whether it is
	// final and so to be remembered.
	Convert func(id string, r R) (st provider.JobStatus, final bool)
	// Remember keeps a final status; it takes its own lock.
	Remember func(id string, st provider.JobStatus)
}

// Run answers Status for ids, in their order.
func (s *Status[R]) Run(ctx context.Context, ids []string) ([]provider.JobStatus, error) {
	out := make([]provider.JobStatus, len(ids))
	var ask []string
	where := map[string][]int{} // job ID → indexes into ids
	s.Lock.Lock()
	for i, id := range ids {
		out[i] = provider.JobStatus{JobID: id}
		final, stdout, stderr, known := s.Lookup(id)
		if final != nil {
			out[i] = *final
			continue
		}
		if known {
			out[i].StdoutPath, out[i].StderrPath = stdout, stderr
		}
		if s.Invalid != nil {
			if msg := s.Invalid(id); msg != "" {
				out[i].Message = msg
				continue
			}
		}
		if _, ok := where[id]; !ok {
			ask = append(ask, id)
		}
		where[id] = append(where[id], i)
	}
	s.Lock.Unlock()
	if len(ask) == 0 {
		return out, nil
	}
	found, err := s.Queue(ctx, ask)
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, id := range ask {
		if _, ok := found[id]; !ok {
			gone = append(gone, id)
		}
	}
	var histErr error
	if len(gone) > 0 && s.History != nil {
		var hist map[string]R
		hist, histErr = s.History(ctx, gone)
		for id, r := range hist {
			found[id] = r
		}
	}
	for _, id := range ask {
		r, ok := found[id]
		for _, i := range where[id] {
			if !ok {
				out[i].State = provider.Missing
				out[i].Message = s.Missing(histErr)
				continue
			}
			st, final := s.Convert(id, r)
			st.StdoutPath, st.StderrPath = out[i].StdoutPath, out[i].StderrPath
			out[i] = st
			if final {
				s.Remember(id, st)
			}
		}
	}
	return out, nil
}
