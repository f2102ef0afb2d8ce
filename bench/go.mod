module github.com/telemetry-kit/telemetry-kit/bench

go 1.26

replace github.com/telemetry-kit/telemetry-kit => ../
