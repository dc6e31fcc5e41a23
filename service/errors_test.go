package service

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorInfo returns err's code and ErrorInfo.
func errorInfo(t *testing.T, err error) (codes.Code, *errdetails.ErrorInfo) {
	t.Helper()
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return st.Code(), info
		}
	}
	t.Fatalf("%v carries no ErrorInfo", err)
	return 0, nil
}

func TestGetEventErrors(t *testing.T) {
	const id = "00112233445566778899aabbccddeeff"
	from := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	to := from.Add(2 * time.Hour)

	code, info := errorInfo(t, errLookupBudget(id, 10_000, 10_000, from, to, 40*time.Minute))
	if code != codes.FailedPrecondition || info.GetReason() != ReasonLookupBudget || info.GetDomain() != ErrorDomain {
		t.Errorf("budget exhausted: %v %v", code, info)
	}
	want := map[string]string{"budget": "10000", "reads": "10000", "searched_from": "2026-03-01T10:00:00Z",
		"searched_to": "2026-03-01T12:00:00Z", "budget_reach": "40m0s"}
	for k, v := range want {
		if got := info.GetMetadata()[k]; got != v {
			t.Errorf("budget exhausted: metadata %s = %q, want %q", k, got, v)
		}
	}

	code, info = errorInfo(t, errAttemptsBudget(id))
	if code != codes.FailedPrecondition || info.GetReason() != ReasonLookupBudget || info.GetMetadata()["event_id"] != id {
		t.Errorf("attempts by event, budget exhausted: %v %v", code, info)
	}
	if msg := status.Convert(errAttemptsBudget(id)).Message(); !strings.Contains(msg, id) || !strings.Contains(msg, "list the endpoint's attempts") {
		t.Errorf("attempts by event, budget exhausted: message %q names neither the event nor what to do", msg)
	}

	code, info = errorInfo(t, errEventNotFound(id, time.Time{}, time.Time{}))
	if code != codes.NotFound || info.GetReason() != ReasonEventNotFound || len(info.GetMetadata()) != 0 {
		t.Errorf("not in the log: %v %v", code, info)
	}
	code, info = errorInfo(t, errEventNotFound(id, from, to))
	if code != codes.NotFound || info.GetReason() != ReasonEventNotFound ||
		info.GetMetadata()["received_after"] != "2026-03-01T10:00:00Z" || info.GetMetadata()["received_before"] != "2026-03-01T12:00:00Z" {
		t.Errorf("not in the range: %v %v", code, info)
	}
	// The range is the one sent, to the nanosecond, not cut to seconds.
	_, info = errorInfo(t, errEventNotFound(id, time.Time{}, to.Add(346022*time.Microsecond)))
	if got := info.GetMetadata()["received_before"]; got != "2026-03-01T12:00:00.346022Z" {
		t.Errorf("received_before %q, want it as sent", got)
	}
}

// A ListEvents page token past the end names itself and the token that
// reads on after the log's last event.
func TestPageTokenPastEnd(t *testing.T) {
	code, info := errorInfo(t, errPageTokenPastEnd(22, 20))
	want := map[string]string{"cursor": "22", "last_cursor": "20", "next_page_token": "21"}
	if code != codes.OutOfRange || info.GetReason() != ReasonCursorPastEnd || len(info.GetMetadata()) != len(want) {
		t.Fatalf("%v %v", code, info)
	}
	for k, v := range want {
		if got := info.GetMetadata()[k]; got != v {
			t.Errorf("metadata %s = %q, want %q", k, got, v)
		}
	}
}

// TestEveryReasonIsInTheReadme: each Reason* constant of the service (the
// ErrorInfo reasons clients branch on) has its row in README's table of
// reasons, under "Errors".
func TestEveryReasonIsInTheReadme(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, errs, _ := strings.Cut(string(readme), "\n## Errors\n")
	errs, _, _ = strings.Cut(errs, "\n## ")
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`(?m)^\s*Reason\w+\s*=\s*"([A-Z_]+)"`)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			n++
			if !strings.Contains(errs, "\n| `"+m[1]+"` |") {
				t.Errorf("reason %s (%s) has no row in README's Errors table", m[1], f)
			}
		}
	}
	if n < 20 {
		t.Fatalf("found %d reasons in the service's sources; the pattern no longer matches their declarations", n)
	}
}
