module github.com/telemetry-kit/telemetry-kit/bench

go 1.26.0

replace (
	github.com/telemetry-kit/telemetry-kit => ../
	github.com/telemetry-kit/telemetry-kit/server => ../server
)

require (
	github.com/posthog/posthog-go v1.5.2
	github.com/spf13/cobra v1.10.2
	github.com/telemetry-kit/telemetry-kit v0.0.0-00010101000000-000000000000
	github.com/telemetry-kit/telemetry-kit/server v0.0.0-00010101000000-000000000000
	go.etcd.io/bbolt v1.4.3
)

require (
	github.com/denisbrodbeck/machineid v1.0.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/hashicorp/go-retryablehttp v0.7.8 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
)
