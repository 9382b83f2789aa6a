package extensions

import (
	"log/slog"
)

// maxEnvelopeSize bounds a recorded envelope, as package signing bounds
// every envelope it reads.
const maxEnvelopeSize = 1 << 20

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
