package talim

import (
	"os"
	"strings"
	"testing"

	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/services/chat"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/notification"
	"github.com/talim/realtime/services/presence"
)

// TestREADME_DocumentsEveryVariable keeps the README's configuration reference
// complete: every variable a binary reads appears there.
func TestREADME_DocumentsEveryVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	regs := map[string]func(*config.Set){
		"edge": new(edge.Config).Register, "chat": new(chat.Config).Register,
		"notification": new(notification.Config).Register, "presence": new(presence.Config).Register,
		"talim dev": new(DevConfig).Register,
		"logging":   func(s *config.Set) { new(service.Log).Register(s, "json") },
	}
	for name, reg := range regs {
		set := config.NewSet(nil, func(string) (string, bool) { return "", false })
		reg(set)
		for _, v := range set.Vars() {
			if !strings.Contains(string(readme), "`"+v.Env+"`") {
				t.Errorf("README.md does not document %s (read by %s, default %q)", v.Env, name, v.Default)
			}
		}
	}
}
