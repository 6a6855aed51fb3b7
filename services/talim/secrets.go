package talim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/talim/realtime/pkg/service"
)

// Names of the secret files talim dev keeps in its data directory.
const (
	JWTSecretFile    = "jwt-secret"
	ServiceTokenFile = "service-token"
)

// loadOrCreateSecret returns the secret stored in dir/name, creating a random one
// (mode 0600) on first use.
func loadOrCreateSecret(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create data dir %s: %w", dir, err)
	}
	s := service.RandomToken(32)
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	return s, nil
}

// ReadSecret reads dir/name without creating it (talim token and talim notify).
func ReadSecret(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("read %s (start `talim dev` once, or set the variable): %w", filepath.Join(dir, name), err)
	}
	return strings.TrimSpace(string(b)), nil
}
