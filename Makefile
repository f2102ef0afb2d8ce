# telemetry-kit: the README's two commands are `make demo` and `make test`.
GO ?= go

.PHONY: demo test bench fuzz vet

# Runs the main job end to end (see README.md).
demo:
	@./scripts/demo.sh

# Runs every test. Starts a throwaway PostgreSQL when none is reachable.
test:
	@./scripts/test.sh

# Runs the benchmarks and the comparisons recorded in docs/benchmarks.md.
bench:
	@./scripts/bench.sh

# Runs each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzEventJSON -fuzztime=$(FUZZTIME) ./core/
	$(GO) test -run='^$$' -fuzz=FuzzScrub -fuzztime=$(FUZZTIME) ./consent/

vet:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
