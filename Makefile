# meander: `make demo` runs the loop, `make test` passes the tests; both set up what they need.
VENV    ?= .venv
PYTHON  ?= python3
BIN      = $(VENV)/bin
# make test: two pytest-xdist workers (the CI machine has 2 cores), each with its own Kafka and Redis
TEST_WORKERS ?= 2
STAMP    = $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SUDO     = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.DEFAULT_GOAL := help
.PHONY: help install system-deps demo test lint format infra-up infra-down bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install meander with its development tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,fast]"  # fast: the confluent-kafka bus, tested too
	@rm -f $(VENV)/.installed-* && touch $@

system-deps: ## Install redis-server, a JDK, Maven, kcat, Chromium (browser test), Prometheus and Alertmanager from Debian's packages when missing
	@missing=""; \
	command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jdk-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v kcat >/dev/null || missing="$$missing kcat"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	[ -x /usr/bin/promtool ] || missing="$$missing prometheus"; \
	[ -x /usr/bin/amtool ] || missing="$$missing prometheus-alertmanager"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

demo: install ## Run the demo on the embedded backends (no servers needed)
	PYTHONHASHSEED=0 $(BIN)/meander demo

test: install system-deps ## Run every test; starts a real Kafka broker and a real Redis
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: install ## ruff (lint + format check), mypy and the import contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

infra-up: install system-deps ## Start Kafka (9092) and Redis (6379) on loopback, detached
	$(BIN)/python -m meander.infra up

infra-down: install ## Stop what infra-up started
	$(BIN)/python -m meander.infra down

bench: install system-deps ## Run the benchmarks on a real broker; JSON in artifacts/bench/
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"  # confluent-kafka: the hot path's reference and measuring client
	PYTHONHASHSEED=0 $(BIN)/python -m benchmarks

clean: ## Remove the virtualenv and caches (keeps the Kafka jars in .cache/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
