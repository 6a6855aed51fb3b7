package watch

import (
	"errors"
	"testing"
)

func TestSets_LimitPerConnection(t *testing.T) {
	s := New()
	if _, err := s.Add("e1", "c1", []string{"a", "b"}, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add("e1", "c1", []string{"b", "c"}, 3); err != nil { // b held: 3 in all
		t.Fatal(err)
	}
	before, err := s.Add("e1", "c1", []string{"d"}, 3)
	if !errors.Is(err, ErrLimit) || before != 3 || s.Len("e1", "c1") != 3 {
		t.Fatalf("4th: before=%d err=%v len=%d", before, err, s.Len("e1", "c1"))
	}
	if _, err := s.Add("e1", "c2", []string{"a", "b", "c"}, 3); err != nil { // own budget
		t.Fatal(err)
	}
	s.Remove("e1", "c1", []string{"a", "zzz"})
	if _, err := s.Add("e1", "c1", []string{"d"}, 3); err != nil {
		t.Fatal(err)
	}
	s.Apply("e2", "c9", []string{"x"}, nil)
	if s.Total() != 7 {
		t.Fatalf("total = %d", s.Total())
	}
	s.DropConn("e1", "c1")
	s.DropEdge("e2")
	if s.Total() != 3 || s.Len("e1", "c1") != 0 || s.Len("e1", "c2") != 3 {
		t.Fatalf("after drops: total=%d", s.Total())
	}
	s.Apply("e1", "c2", nil, []string{"a", "b", "c"})
	if s.Total() != 0 {
		t.Fatalf("total = %d", s.Total())
	}
}
