package idindex

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A segment file cut short under its mapping (as a failing disk or another
// process could leave it) makes lookups and inserts fail with an error
// naming the file, as pread and pwrite would, instead of killing the
// process with SIGBUS.
func TestFileCutUnderItsMappingIsAnError(t *testing.T) {
	dir := t.TempDir()
	x := open(t, dir, Options{Window: time.Hour, MinSlots: 1 << 10})
	now := time.Now()
	if err := x.Insert(KeyOf(id(1)), 1, now); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := x.Lookup(KeyOf(id(1))); !ok || err != nil {
		t.Fatalf("Lookup before the cut = %v, %v", ok, err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if len(names) != 1 {
		t.Fatalf("segments = %v", names)
	}
	if err := os.Truncate(names[0], headerSize); err != nil {
		t.Fatal(err)
	}
	_, ok, err := x.Lookup(KeyOf(id(1)))
	if err == nil || ok || !strings.Contains(err.Error(), names[0]) {
		t.Errorf("Lookup after the cut = %v, %v; want an error naming %s", ok, err, names[0])
	}
	if err := x.Insert(KeyOf(id(2)), 2, now); err == nil {
		t.Error("Insert after the cut succeeded")
	}
}
