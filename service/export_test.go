package service

// SetQuarantineScanBudget lowers the read budget of one quarantine call, so
// tests can page across more entries than the budget without storing
// thousands of them.
func SetQuarantineScanBudget(s *Services, entries, bytes int) {
	s.Quarantine.scanEntries, s.Quarantine.scanBytes = entries, bytes
}

// QuarantineScanBudget is the read budget of one quarantine call.
const (
	QuarantineScanEntries = quarantineScanEntries
	QuarantineScanBytes   = quarantineScanBytes
)

// SetReplayBatch lowers the events one ReplayNormalization call reads, so
// tests can page a run across a few events.
func SetReplayBatch(s *Services, n int) { s.Admin.batch = n }
