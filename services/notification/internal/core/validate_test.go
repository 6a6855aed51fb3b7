package core

import (
	"errors"
	"testing"
	"time"
)

func TestValidateSend_PlainRequest(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	future := now.Add(time.Hour + 123456789)
	in, err := validateSend(SendRequest{
		IdempotencyKey: "k", Recipients: []string{"a", "b", "a"}, Category: "c", Title: "t",
		Data: map[string]string{"z": "1", "a": "2"}, ExpiresAt: &future,
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Recipients) != 2 || in.Content.Priority != PriorityNormal || in.Content.Data[0].K != "a" {
		t.Fatalf("input = %+v", in)
	}
	if !in.Content.ExpiresAt.Equal(future.Truncate(time.Millisecond)) {
		t.Fatalf("expiresAt = %v", in.Content.ExpiresAt)
	}
}

func TestValidateSend_Violations(t *testing.T) {
	t.Parallel()
	now := time.Now()
	past := now.Add(-time.Second)
	_, err := validateSend(SendRequest{Recipients: []string{"ok", "$gt"}, Priority: "9", ExpiresAt: &past}, now)
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v", err)
	}
	want := []string{"recipients[1]", "category", "title", "idempotency_key", "priority", "expires_at"}
	if len(ie.Violations) != len(want) {
		t.Fatalf("violations = %+v", ie.Violations)
	}
	for i, f := range want {
		if ie.Violations[i].Field != f {
			t.Fatalf("violation %d = %+v, want field %s", i, ie.Violations[i], f)
		}
	}
	if ie.Violations[4].Description != "unknown priority 9" {
		t.Fatalf("priority: %q", ie.Violations[4].Description)
	}
}

func TestCheckMarkRead(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		ids  []string
		all  bool
		okay bool
	}{
		{nil, true, true}, {[]string{"n_1"}, false, true}, {nil, false, false},
		{[]string{"n_1"}, true, false}, {[]string{""}, false, false}, {make([]string, MaxIDs+1), false, false},
	} {
		if got := CheckMarkRead(c.ids, c.all) == ""; got != c.okay {
			t.Errorf("CheckMarkRead(%v, %v) valid = %v", c.ids, c.all, got)
		}
	}
}
