package talim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/services/notification"
)

// Names of the secret files talim dev keeps in its data directory.
const (
	JWTSecretFile    = "jwt-secret"
	ServiceTokenFile = "service-token"
	// VAPIDKeyFile holds talim dev's Web Push VAPID private key (base64url).
	VAPIDKeyFile = "vapid-private-key"
)

// loadOrCreateVAPIDKey returns the VAPID private key stored in dir, creating one
// (mode 0600) on first use, so browsers' subscriptions survive a restart.
func loadOrCreateVAPIDKey(dir string) (string, error) {
	p := filepath.Join(dir, VAPIDKeyFile)
	b, err := os.ReadFile(p)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	priv, _, err := notification.GenerateVAPIDKeys()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(p, []byte(priv+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	return priv, nil
}

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
