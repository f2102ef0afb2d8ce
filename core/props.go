package core

// Props are an event's properties: the author's own key/value pairs, recorded
// in the event's metadata. Values may be strings, numbers, booleans, nil, or
// slices and maps of those. Every string is scrubbed of personal data before
// it is stored.
type Props = map[string]any
