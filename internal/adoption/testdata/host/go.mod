module example.com/host

go 1.23

require (
	github.com/spf13/cobra v1.8.1
	github.com/urfave/cli/v2 v2.25.7
)
