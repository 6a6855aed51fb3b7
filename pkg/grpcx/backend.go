package grpcx

import (
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Backend holds what an API serves with once its service is connected, so the API
// can be registered on a server before that (talim dev registers every API on one
// server first). Until Set, and after Set(nil), Get fails with Unavailable.
type Backend[T any] struct {
	p atomic.Pointer[T]
}

// Set makes Get return v (nil: Unavailable again).
func (b *Backend[T]) Set(v *T) { b.p.Store(v) }

// Get returns the backend, or an Unavailable status naming service when there is none.
func (b *Backend[T]) Get(service string) (*T, error) {
	if v := b.p.Load(); v != nil {
		return v, nil
	}
	return nil, status.Errorf(codes.Unavailable, "%s service is not connected yet", service)
}
