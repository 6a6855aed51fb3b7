package talim

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/grpcx"
	safeguardingv1 "github.com/talim/realtime/proto/talim/safeguarding/v1"
)

// auditCommand is `talim audit verify`: it asks chat's RecordsService to walk the
// audit log's hash chain (docs/safeguarding.md, "Checking the audit log") and
// prints the result. Through the gRPC API rather than reading MongoDB itself: it
// needs only the service token every school backend already has, not database
// credentials, and it checks the same collection chat writes, whatever
// database chat is configured with. Exit status: 0 intact, 1 broken or the call
// failed, 2 bad usage.
func auditCommand(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: talim audit verify [--addr host:port] [--token T]")
		return 2
	}
	var addr, token, dataDir string
	var timeout time.Duration
	ok := parse("audit verify", args[1:], env, stderr, func(s *config.Set) {
		s.String(&addr, "addr", "TALIM_GRPC_ADDR", "127.0.0.1:9090", "gRPC address of chat")
		s.String(&token, "token", "TALIM_SERVICE_TOKEN", "", "service token (default: the one talim dev generated)")
		s.String(&dataDir, "data-dir", "TALIM_DATA_DIR", "./data", "data directory of talim dev")
		s.Duration(&timeout, "timeout", "TALIM_AUDIT_TIMEOUT", 10*time.Minute, "how long the walk may take")
	})
	if !ok {
		return 2
	}
	if token == "" {
		t, err := ReadSecret(dataDir, ServiceTokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "talim audit verify: TALIM_SERVICE_TOKEN: %v\n", err)
			return 2
		}
		token = t
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: token, Insecure: true}))
	if err != nil {
		fmt.Fprintf(stderr, "talim audit verify: dial %s: %v\n", addr, err)
		return 1
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := safeguardingv1.NewRecordsServiceClient(conn).VerifyAudit(cctx, &safeguardingv1.VerifyAuditRequest{})
	if err != nil {
		fmt.Fprintf(stderr, "talim audit verify: %v\n", err)
		return 1
	}
	if !v.GetOk() {
		fmt.Fprintf(stdout, "BROKEN at entry %d: %s\n%d entries before it are intact; last good hash %s\n",
			v.GetFirstBadSeq(), v.GetProblem(), v.GetEntries(), v.GetHeadHash())
		return 1
	}
	fmt.Fprintf(stdout, "OK: %d entries, chain intact; head hash %s\n", v.GetEntries(), v.GetHeadHash())
	return 0
}
