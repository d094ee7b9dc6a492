# The test command in README.md is `make test`; CI runs exactly that.
GO ?= go

.PHONY: test vet build bench test-s3

build:
	CGO_ENABLED=0 $(GO) build -o bin/talus ./cmd/talus

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

# The race detector runs over every package with the quick (-short) sizes; the
# full-size tests (100 MiB objects, 1,000,000-segment placement runs) run once
# without it.
test: vet
	$(GO) test -race -short -count=1 -timeout 10m ./...
	$(GO) test -count=1 -timeout 10m ./...
	$(MAKE) test-s3

# Real S3 clients (the aws CLI and boto3, both preinstalled on our machines)
# against a fresh `talus dev`.
test-s3:
	test/s3/run.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./erasure/ ./placement/ ./chunkserver/

# talus and MinIO side by side, written into bench/RESULTS.md (about 15
# minutes, plus 6 the first time to build MinIO into .tools/): not part of test.
.PHONY: compare
compare:
	bench/compare.sh
