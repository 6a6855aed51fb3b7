// Command notification runs the Talim Realtime notification service.
package main

import (
	"context"
	"log/slog"

	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/services/notification"
)

func main() {
	var cfg notification.Config
	service.Main("notification", func(s *config.Set) { cfg.Register(s) }, func(ctx context.Context, log *slog.Logger) error {
		svc, err := notification.New(cfg, log)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
