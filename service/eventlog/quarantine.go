package eventlog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// Quarantine stores q under q.Id unless an entry with that id exists (a
// vendor retry of the same bad request). It reports whether it stored it.
func (l *Log) Quarantine(ctx context.Context, q *hookstreamv1.QuarantinedRequest) (created bool, err error) {
	data, err := proto.Marshal(q)
	if err != nil {
		return false, fmt.Errorf("eventlog: encode quarantine entry: %w", err)
	}
	if int64(len(data))+1024 > l.nc.MaxPayload() {
		return false, ErrTooLarge
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	defer cancel()
	if _, err := l.quarantine.Create(ctx, q.GetId(), data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil
		}
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return true, nil
}

// QuarantineEntry returns one quarantined request and its revision, for an
// optimistic update.
func (l *Log) QuarantineEntry(ctx context.Context, id string) (*hookstreamv1.QuarantinedRequest, uint64, error) {
	e, err := l.quarantine.Get(ctx, id)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
			return nil, 0, ErrNotFound
		}
		return nil, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	q := &hookstreamv1.QuarantinedRequest{}
	if err := proto.Unmarshal(e.Value(), q); err != nil {
		return nil, 0, fmt.Errorf("eventlog: decode quarantine entry %s: %w", id, err)
	}
	return q, e.Revision(), nil
}

// QuarantineEntries returns every quarantined request, oldest first.
func (l *Log) QuarantineEntries(ctx context.Context) ([]*hookstreamv1.QuarantinedRequest, error) {
	keys, err := l.quarantine.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var out []*hookstreamv1.QuarantinedRequest
	for k := range keys.Keys() {
		q, _, err := l.QuarantineEntry(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted between list and get
		}
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b *hookstreamv1.QuarantinedRequest) int {
		if c := a.GetReceivedAt().AsTime().Compare(b.GetReceivedAt().AsTime()); c != 0 {
			return c
		}
		return cmp.Compare(a.GetId(), b.GetId())
	})
	return out, nil
}

// UpdateQuarantine replaces an entry if it is still at revision.
func (l *Log) UpdateQuarantine(ctx context.Context, q *hookstreamv1.QuarantinedRequest, revision uint64) error {
	data, err := proto.Marshal(q)
	if err != nil {
		return fmt.Errorf("eventlog: encode quarantine entry: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	defer cancel()
	if _, err := l.quarantine.Update(ctx, q.GetId(), data, revision); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}
