package monitoring

import "github.com/parsl-go/parsl/monitoring/store"

// Store returns the database the hub writes, for readers in the same
// process such as the live dashboard. Its read API sees committed rows and
// never blocks the writer.
func (h *Hub) Store() *store.Store { return h.st }
