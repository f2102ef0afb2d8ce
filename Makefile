# telemetry-kit: the README's two commands are `make demo` and `make test`.
GO ?= go

.PHONY: demo test bench bench-query fuzz vet screenshots

# Runs the main job end to end (see README.md).
demo:
	@./scripts/demo.sh

# Runs every test. Starts a throwaway PostgreSQL when none is reachable.
test:
	@./scripts/test.sh

# Refreshes docs/screenshots/ (the dashboard's pages over a generated
# history, taken by its browser test in headless Chromium).
screenshots:
	@url=$$(./scripts/ensure-postgres.sh) && cd server && TK_TEST_DATABASE_URL="$$url" \
		TK_SCREENSHOTS="$(CURDIR)/docs/screenshots" TK_REQUIRE_BROWSER=1 \
		$(GO) test -count=1 -run '^(TestInBrowser|TestEraseInBrowser)$$' ./dashboard/

# Runs the benchmarks and the comparisons recorded in docs/benchmarks.md.
bench:
	@./scripts/bench.sh

# The query API at 10 million events (loads a synthetic history first; long).
bench-query:
	@./scripts/bench-query.sh

# Runs each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzEventJSON$$' -fuzztime=$(FUZZTIME) ./wire/
	$(GO) test -run='^$$' -fuzz='^FuzzEncodeEvent$$' -fuzztime=$(FUZZTIME) ./wire/
	$(GO) test -run='^$$' -fuzz='^FuzzScrub$$' -fuzztime=$(FUZZTIME) ./internal/privacy/
	$(GO) test -run='^$$' -fuzz='^FuzzParseCanonical$$' -fuzztime=$(FUZZTIME) ./internal/privacy/
	$(GO) test -run='^$$' -fuzz='^FuzzParseJournal$$' -fuzztime=$(FUZZTIME) ./internal/store/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeSum$$' -fuzztime=$(FUZZTIME) ./internal/store/
	$(GO) test -run='^$$' -fuzz='^FuzzParseRetryAfter$$' -fuzztime=$(FUZZTIME) ./internal/sender/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeResponseAndState$$' -fuzztime=$(FUZZTIME) ./internal/sender/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeBatch$$' -fuzztime=$(FUZZTIME) ./server/decode/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeMatchesReference$$' -fuzztime=$(FUZZTIME) ./server/decode/

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

MODULES = . server cmd/tk-server e2e examples bench

vet:
	for m in $(MODULES); do (cd $$m && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...) || exit 1; done
