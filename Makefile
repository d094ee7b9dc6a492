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
	$(MAKE) test-compose

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

# The container image talus:dev: FROM scratch around the static binary, so it
# builds without pulling anything. The build context is only .build/image:
# rootfs/ (the binary, /tmp) and data/ (the volume mount point).
.PHONY: image test-compose
image: build
	rm -rf .build/image
	mkdir -p .build/image/rootfs/tmp .build/image/data
	chmod 1777 .build/image/rootfs/tmp
	cp bin/talus .build/image/rootfs/talus
	docker build -q -t talus:dev -f Dockerfile .build/image

# The compose cluster (3 metadata nodes, 6 chunk servers, 2 gateways) under
# real container failures; skipped where no Docker engine runs.
test-compose:
	@if docker info >/dev/null 2>&1; then \
		$(MAKE) image && test/e2e-compose.sh; \
	else \
		echo "test-compose: skipped, no Docker engine (docker info failed)"; \
	fi
