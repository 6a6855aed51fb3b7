// Command edge runs the Talim Realtime edge service.
package main

import (
	"context"
	"log/slog"

	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/services/edge"
)

func main() {
	var cfg edge.Config
	service.Main("edge", func(s *config.Set) { cfg.Register(s) }, func(ctx context.Context, log *slog.Logger) error {
		svc, err := edge.New(cfg, log)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
