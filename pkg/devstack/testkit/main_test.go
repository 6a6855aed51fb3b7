package testkit_test

import (
	"testing"

	"github.com/talim/realtime/pkg/devstack/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
