package service

import "testing"

func TestPageSize(t *testing.T) {
	for in, want := range map[int32]int{0: defaultPageSize, -3: defaultPageSize, 1: 1, 1000: 1000, 1001: 1000, 1 << 30: maxPageSize} {
		if got := pageSize(in); got != want {
			t.Errorf("pageSize(%d) = %d, want %d", in, got, want)
		}
	}
}
