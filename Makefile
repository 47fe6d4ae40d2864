# docker autobackup — build, install, run the example, test.
#
#   make example   build and install the plugin, bring up examples/shop, back it up
#   make test      unit and end-to-end tests (needs a Docker engine; Compose v2 is built here)
#
# Nothing here pulls an image: test and example images are built from scratch
# by scripts/build-images.sh; Compose v2 is built from tools/compose.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO               ?= go
BIN              := bin/docker-autobackup
DOCKER_CONFIG    ?= $(HOME)/.docker
CLI_PLUGINS      := $(DOCKER_CONFIG)/cli-plugins
AUTOBACKUP_CACHE ?= $(HOME)/.cache/autobackup
# Where scripts/build-compose.sh puts Compose v2 (it honours AUTOBACKUP_CACHE).
COMPOSE_BIN      := $(AUTOBACKUP_CACHE)/docker-compose
# Where scripts/build-versitygw.sh puts the S3 server the remote tests use.
VERSITYGW_BIN    := $(AUTOBACKUP_CACHE)/versitygw
# Where scripts/build-mailpit.sh puts mailpit, the SMTP server of the
# notification tests.
MAILPIT_BIN      := $(AUTOBACKUP_CACHE)/mailpit
EXAMPLE_DIR      := examples/shop

export AUTOBACKUP_CACHE

.PHONY: help build install compose versitygw mailpit images pg-image example example-down test vet bench bench-pg clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build the static plugin into ./bin/docker-autobackup
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/docker-autobackup

# The docker CLI finds plugins in $DOCKER_CONFIG/cli-plugins. Compose v2 is
# installed next to it only when `docker compose` is not already v2 (a
# system-wide plugin, Docker Desktop): we do not shadow a working install.
install: build ## install the plugin (and Compose v2 if docker lacks it) into $DOCKER_CONFIG/cli-plugins
	mkdir -p "$(CLI_PLUGINS)"
	install -m 0755 $(BIN) "$(CLI_PLUGINS)/docker-autobackup"
	@echo "installed $(CLI_PLUGINS)/docker-autobackup"
	@if docker compose version --short 2>/dev/null | grep -Eq '^v?2\.'; then \
		echo "docker compose is v2 already ($$(docker compose version --short)): not installing ours"; \
	else \
		compose=$$(scripts/build-compose.sh); \
		install -m 0755 "$$compose" "$(CLI_PLUGINS)/docker-compose"; \
		echo "installed $(CLI_PLUGINS)/docker-compose ($$("$(CLI_PLUGINS)/docker-compose" version --short))"; \
	fi

compose: ## build Compose v2 into $AUTOBACKUP_CACHE (~/.cache/autobackup), cached
	scripts/build-compose.sh >/dev/null

versitygw: ## build the S3 server for the remote tests (versitygw) into $AUTOBACKUP_CACHE, cached
	scripts/build-versitygw.sh >/dev/null

mailpit: ## build mailpit (SMTP server for the notification tests) into $AUTOBACKUP_CACHE, cached
	scripts/build-mailpit.sh >/dev/null

images: ## build the test and example images locally (no registry)
	scripts/build-images.sh

example: build compose images install ## bring up examples/shop and back it up with the installed plugin
	cd $(EXAMPLE_DIR) && docker compose up -d --wait
	cd $(EXAMPLE_DIR) && docker autobackup run
	cd $(EXAMPLE_DIR) && docker autobackup status
	@echo
	@echo "The shop runs at http://localhost:$${SHOP_PORT:-18080}/ ; 'make example-down' removes it (and its volume)."

example-down: ## stop examples/shop and remove its containers and volume
	cd $(EXAMPLE_DIR) && docker compose down -v --remove-orphans

# The e2e tests install the freshly built plugin and $(COMPOSE_BIN) into a
# temporary DOCKER_CONFIG of their own: nothing here touches yours. With
# CI=true, a missing engine, Compose, versitygw or mailpit fails the run
# instead of skipping.
test: compose versitygw mailpit images ## run all tests, end-to-end included
	AUTOBACKUP_COMPOSE="$(COMPOSE_BIN)" AUTOBACKUP_VERSITYGW="$(VERSITYGW_BIN)" AUTOBACKUP_MAILPIT="$(MAILPIT_BIN)" CI="$${CI:-}" $(GO) test -count=1 -timeout 40m ./...
	cd bench/cmd/pgload && $(GO) test -count=1 ./...

vet: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l .); \
	if [[ -n $$out ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench: ## run the benchmarks (bench/run.sh)
	@if [[ -x bench/run.sh ]]; then ./bench/run.sh; \
	else echo "make bench: bench/run.sh does not exist yet" >&2; exit 1; fi

pg-image: ## build the PostgreSQL 15 image of bench-pg locally (debootstrap, no registry), cached
	scripts/build-pg-image.sh

bench-pg: ## database benchmark: PostgreSQL under load, client-observed downtime (bench/pg.sh; needs root)
	./bench/pg.sh

clean: ## remove ./bin and the compiled example binary
	rm -rf bin images/shopd/shopd
