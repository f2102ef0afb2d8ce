#!/bin/sh
# Measures BenchmarkDecodeBatchLibs with the third-party libraries: builds a
# scratch copy of package decode (in $DIR, default a new temporary
# directory) with decode_libs_extra_bench_test.go.txt added, two test
# binaries (default build, and GOEXPERIMENT=jsonv2 for encoding/json/v2),
# checks them, then runs both ROUNDS times (default 6), one after the other,
# so that the variants are interleaved. Results: $DIR/results.txt.
set -e
export GOWORK=off
here=$(cd "$(dirname "$0")" && pwd)
server=$(cd "$here/../../.." && pwd)
root=$(cd "$server/.." && pwd)
DIR=${DIR:-$(mktemp -d)}
ROUNDS=${ROUNDS:-6}
mkdir -p "$DIR"
rm -rf "$DIR/decode"
cp -r "$server/decode" "$DIR/decode"
rm -rf "$DIR/decode/testdata/jsonlibs"
cp "$here/decode_libs_extra_bench_test.go.txt" "$DIR/decode/decode_libs_extra_bench_test.go"
cat > "$DIR/go.mod" <<EOM
module jsonlibs

go 1.26.0

replace (
	github.com/telemetry-kit/telemetry-kit => $root
	github.com/telemetry-kit/telemetry-kit/server => $server
)
EOM
cd "$DIR"
go get github.com/go-json-experiment/json@v1.27.2 github.com/goccy/go-json@v0.12.0 github.com/bytedance/sonic@v1.15.5
go mod tidy
go test -count=1 -run TestLibDecodeMatches ./decode/
GOEXPERIMENT=jsonv2 go test -count=1 -run TestLibDecodeMatches ./decode/
go test -c -o v1.test ./decode/
GOEXPERIMENT=jsonv2 go test -c -o v2.test ./decode/
cd decode
: > ../results.txt
i=0
while [ $i -lt "$ROUNDS" ]; do
	i=$((i + 1))
	../v1.test -test.run '^$' -test.bench '^BenchmarkDecodeBatchLibs$' -test.benchmem -test.count=1 | grep ^Benchmark | sed 's/^BenchmarkDecodeBatchLibs/default/' >> ../results.txt
	../v2.test -test.run '^$' -test.bench '^BenchmarkDecodeBatchLibs$' -test.benchmem -test.count=1 | grep ^Benchmark | sed 's/^BenchmarkDecodeBatchLibs/jsonv2/' >> ../results.txt
	echo "round $i done: $(uptime)" >&2
done
echo "$DIR/results.txt"
