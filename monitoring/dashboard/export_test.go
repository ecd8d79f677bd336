package dashboard

// Exported for the external tests.
var StateColor = stateColor

const UnknownColor = unknownColor

// OpenStreams returns the number of event streams open now.
func (h *Handler) OpenStreams() int {
	h.streamMu.Lock()
	defer h.streamMu.Unlock()
	return h.streams
}
