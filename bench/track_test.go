package bench

import "testing"

func BenchmarkTelemetryKitTrack(b *testing.B) { TelemetryKitTrack(b) }
func BenchmarkPostHogEnqueue(b *testing.B)    { PostHogEnqueue(b) }
