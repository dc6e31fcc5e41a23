package config

import "time"

// The defaults, in one place: the config applies them, and the packages
// below it (the event log, the services) fall back to the same constants
// when a caller leaves a value zero, so a default can never differ
// between them.
const (
	DefaultRetention   = 7 * 24 * time.Hour
	DefaultDedupWindow = 2 * time.Hour
	// MinDedupWindow is the shortest log.dedup_window: vendors retry for
	// minutes, and redeliveries come later.
	MinDedupWindow            = time.Hour
	DefaultDedupGuard         = time.Minute
	DefaultMaxMessageSize     = 8 << 20
	DefaultMinFreeDisk        = 256 << 20
	DefaultConnectTimeout     = 30 * time.Second
	DefaultWriteTimeout       = 5 * time.Second
	DefaultReadBudget         = 16 << 20
	DefaultHeartbeat          = 15 * time.Second
	DefaultStallTimeout       = 30 * time.Second
	DefaultMaxStreams         = 1000
	DefaultMaxStreamsPerToken = 100
	DefaultStreamBuffer       = 1 << 20
	DefaultBufferBudget       = 256 << 20
	DefaultShutdownTimeout    = 15 * time.Second
	// DefaultReplicas is the log's stream replicas (use 3 on a cluster).
	DefaultReplicas = 1
	// DefaultFsyncInterval is how often the embedded server syncs its
	// files with fsync: interval (nats-server's own default).
	DefaultFsyncInterval = 2 * time.Minute
	// DefaultKeepRaw keeps each event's original request body (log.keep_raw).
	DefaultKeepRaw = true

	DefaultDeliveryTimeout     = 15 * time.Second
	DefaultDeliveryJitter      = 0.1
	DefaultDisableAfter        = 5 * 24 * time.Hour
	DefaultDeliveryMaxInFlight = 10
	DefaultDeliveryMaxPending  = 10_000
	DefaultSecretOverlap       = 24 * time.Hour
	DefaultMaxEndpoints        = 1000
	DefaultAttemptsRetention   = 7 * 24 * time.Hour
	DefaultDeadLetterRetention = 30 * 24 * time.Hour
)

// DefaultRetrySchedule is the wait before each retry of a delivery: with
// the immediate first attempt, eight attempts over about 28 hours.
var DefaultRetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}
