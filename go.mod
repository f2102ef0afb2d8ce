module github.com/telemetry-kit/telemetry-kit

go 1.26
