package wire

import "time"

// Limits of a request and of an event (docs/protocol.md, "How the server
// checks a request"). A request past a request limit is refused as a
// whole; an event past an event limit is rejected alone.
const (
	MaxEvents         = 1000      // events per request
	MaxBodyBytes      = 1 << 20   // request body as sent
	MaxDecodedBytes   = 8 << 20   // request body after decompression
	MaxMetadataBytes  = 8 << 10   // one event's metadata object
	MaxMetadataDepth  = 4         // nesting depth of metadata, the object itself is 1
	MaxMetadataString = 1024      // characters of a metadata key or string value
	MaxNameChars      = 256       // characters of metadata.command, .feature or .method
	MaxFieldChars     = 64        // characters of the other string fields
	MaxFlagChars      = 64        // characters of a flag name or value the flag rollup counts
	MaxRollupFlags    = 32        // flags of one event the flag rollup counts
	MaxFutureSkew     = time.Hour // how far in the future a timestamp may be
	MaxDropped        = 1 << 40   // largest "dropped" count a request may carry
	// MaxDurationMS is the largest metadata.duration_ms accepted: 366 days.
	// With it, no sum the server adds up in one transaction can overflow.
	MaxDurationMS = 366 * 24 * 3600 * 1000
)
