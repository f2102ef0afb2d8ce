package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// healthCmd checks a running server's /healthz, for container health
// checks: an image built FROM scratch has no curl or shell.
func (a *app) healthCmd() *cobra.Command {
	var addr string
	return a.command("healthcheck", "Exit 0 if the server at --addr answers /healthz, 1 otherwise (for container health checks)",
		positional(), func(f *envFlags) {
			f.str(&addr, "addr", "127.0.0.1:8080", "the address the server listens on, as given to serve")
		}, func(c *cobra.Command, _ []string) error {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return usagef("bad --addr %q: %v", addr, err)
			}
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				host = "127.0.0.1" // listening on every address: ask over loopback
			}
			ctx, cancel := context.WithTimeout(c.Context(), 3*time.Second)
			defer cancel()
			url := "http://" + net.JoinHostPort(host, port) + "/healthz"
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("unhealthy: %w", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("unhealthy: %s answered %d", url, resp.StatusCode)
			}
			return nil
		})
}
