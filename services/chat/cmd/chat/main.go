// Command chat runs the Talim Realtime chat service.
package main

import (
	"context"
	"log/slog"

	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/services/chat"
)

func main() {
	var cfg chat.Config
	service.Main("chat", func(s *config.Set) { cfg.Register(s) }, func(ctx context.Context, log *slog.Logger) error {
		svc, err := chat.New(cfg, log)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
