//go:build goexperiment.jsonv2

package decode

import (
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
)

func init() {
	u := func(b []byte, v any) error { return jsonv2.Unmarshal(b, v) }
	libVariants = append(libVariants,
		libVariant{"encoding-json-v2", func(body []byte, now time.Time, retention time.Duration) (*server.Batch, error) {
			return libDecodeBatch[jsontext.Value](u, body, now, retention)
		}},
		libVariant{"encoding-json-v2-1pass", func(body []byte, now time.Time, retention time.Duration) (*server.Batch, error) {
			return libDecodeBatchOnePass[jsontext.Value](u, body, now, retention)
		}})
}
