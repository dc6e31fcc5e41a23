package eventlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStreamConflict is the refusal of GuardLimits and of a foreign events
// stream; setup does not retry it.
var ErrStreamConflict = errors.New("eventlog: an existing stream conflicts with this config")

// StreamLimits are what a stream keeps, as hookstream configures it:
// copies, age and bytes (0 for age or bytes: no limit).
type StreamLimits struct {
	Replicas int
	MaxAge   time.Duration
	MaxBytes int64
}

func limitsOf(c jetstream.StreamConfig) StreamLimits {
	return StreamLimits{Replicas: max(1, c.Replicas), MaxAge: c.MaxAge, MaxBytes: max(0, c.MaxBytes)}
}

// lowers lists what going from have to want takes away: fewer copies,
// events aged out sooner, fewer bytes kept.
func (want StreamLimits) lowers(have StreamLimits) []string {
	var out []string
	unlimited := func(v int64) int64 {
		if v <= 0 {
			return 1<<63 - 1
		}
		return v
	}
	if want.Replicas < have.Replicas {
		out = append(out, fmt.Sprintf("replicas %d → %d", have.Replicas, want.Replicas))
	}
	if unlimited(int64(want.MaxAge)) < unlimited(int64(have.MaxAge)) {
		out = append(out, fmt.Sprintf("max age %s → %s", ageString(have.MaxAge), ageString(want.MaxAge)))
	}
	if unlimited(want.MaxBytes) < unlimited(have.MaxBytes) {
		out = append(out, fmt.Sprintf("max bytes %s → %s", bytesString(have.MaxBytes), bytesString(want.MaxBytes)))
	}
	return out
}

func ageString(d time.Duration) string {
	if d <= 0 {
		return "unlimited"
	}
	return d.String()
}

func bytesString(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

// checkSubjects refuses an events stream that holds other subjects than
// hookstream's: another application's stream of the same name, which an
// update would take over.
func checkSubjects(have jetstream.StreamConfig, want []string) error {
	if slices.Equal(have.Subjects, want) {
		return nil
	}
	return fmt.Errorf("%w: stream %s exists with subjects %v, not hookstream's %v: it belongs to something else; remove or rename it, or give hookstream a NATS account of its own",
		ErrStreamConflict, have.Name, have.Subjects, want)
}

// GuardLimits checks the limits this replica is about to set on one of
// hookstream's streams (the events, a bucket's KV_ stream, delivery's)
// against what the stream has now. Every replica sets its own config's
// limits when it starts, so on an external server one started with
// another log: section (the default replicas: 1 beside replicas: 3, a
// shorter retention) would silently cut the copies or delete events the
// others keep. There, lowering is refused with an error that names what
// would be lowered; an operator who means it edits the stream first. On
// the embedded server the config is the only one, and its change is
// applied with a warning. A stream that does not exist yet, or whose
// limits only grow, passes.
func (l *Log) GuardLimits(ctx context.Context, stream string, want StreamLimits) error {
	st, err := l.js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("eventlog: stream %s: %w", stream, err)
	}
	return l.guardLimits(stream, limitsOf(st.CachedInfo().Config), want)
}

// guardLimits is GuardLimits on a stream whose limits are have.
func (l *Log) guardLimits(stream string, have, want StreamLimits) error {
	want.Replicas = max(1, want.Replicas)
	lowered := want.lowers(have)
	switch {
	case len(lowered) == 0:
		return nil
	case l.Embedded():
		l.log.Warn("event log: the config lowers what a stream keeps; applying it", "stream", stream, "changes", strings.Join(lowered, ", "))
		return nil
	}
	return fmt.Errorf("%w: stream %s: this replica's config would lower %s, which other replicas or an earlier config set; "+
		"give every replica the same log: and delivery: settings, or, to lower them on purpose, edit the stream first "+
		"(e.g. nats stream edit %s) and then start with the new values", ErrStreamConflict, stream, strings.Join(lowered, ", "), stream)
}
