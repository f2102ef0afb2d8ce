// Package logutil holds what the SDK's packages share about logging: the SDK
// never logs on its own, so a nil logger means [Discard].
package logutil

import (
	"context"
	"log/slog"
)

// Discard returns a logger that drops every record. It is never enabled, so
// a call to it costs no formatting.
func Discard() *slog.Logger { return slog.New(discardHandler{}) }

type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (h discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h discardHandler) WithGroup(string) slog.Handler           { return h }
