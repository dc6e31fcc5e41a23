package service

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
)

// Options are the dependencies of the services.
type Options struct {
	Logger  *slog.Logger
	Log     *eventlog.Log
	Sources []Source
	Filters *filter.Compiler
	// Heartbeat is the idle interval after which a stream gets a heartbeat.
	Heartbeat time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Services are the gRPC service implementations, sharing one pipeline.
type Services struct {
	Ingest     *Ingest
	Events     *Events
	Quarantine *Quarantine

	stopOnce sync.Once
	stopping chan struct{}
}

// New builds the services.
func New(o Options) (*Services, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	sources := make(map[string]*Source, len(o.Sources))
	for i := range o.Sources {
		s := &o.Sources[i]
		if _, dup := sources[s.Name]; dup {
			return nil, fmt.Errorf("service: duplicate source %q", s.Name)
		}
		if s.Auth == nil || s.Normalizer == nil {
			return nil, fmt.Errorf("service: source %q needs an authenticator and a normalizer", s.Name)
		}
		sources[s.Name] = s
	}
	p := &pipeline{log: o.Log, logger: o.Logger, sources: sources}
	s := &Services{stopping: make(chan struct{})}
	s.Ingest = &Ingest{p: p, now: o.Now}
	s.Events = &Events{log: o.Log, logger: o.Logger, filters: o.Filters, heartbeat: o.Heartbeat, now: o.Now, stopping: s.stopping}
	s.Quarantine = &Quarantine{p: p}
	return s, nil
}

// Stop ends every open stream with UNAVAILABLE (clients resume from their
// cursor elsewhere), so a graceful shutdown is not held up by them.
func (s *Services) Stop() { s.stopOnce.Do(func() { close(s.stopping) }) }
