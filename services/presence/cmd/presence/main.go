// Command presence runs the Talim Realtime presence service.
package main

import (
	"context"
	"log/slog"

	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/services/presence"
)

func main() {
	var cfg presence.Config
	service.Main("presence", func(s *config.Set) { cfg.Register(s) }, func(ctx context.Context, log *slog.Logger) error {
		svc, err := presence.New(cfg, log)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
