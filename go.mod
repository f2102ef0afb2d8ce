module github.com/telemetry-kit/telemetry-kit

go 1.23

require (
	github.com/creack/pty v1.1.3
	github.com/denisbrodbeck/machineid v1.0.1
	github.com/google/uuid v1.6.0
	github.com/hashicorp/go-retryablehttp v0.7.7
	github.com/spf13/cobra v1.8.1
	github.com/spf13/pflag v1.0.6
	github.com/urfave/cli/v2 v2.20.0
	go.etcd.io/bbolt v1.4.0
	golang.org/x/sys v0.29.0
	golang.org/x/term v0.1.0
)

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.4 // indirect
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/xrash/smetrics v0.0.0-20201216005158-039620a65673 // indirect
)
