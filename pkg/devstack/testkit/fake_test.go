package testkit_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/nats-io/nats.go"
)

type natsMsg = nats.Msg

// fakeTB records Fatalf instead of failing the real test.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
