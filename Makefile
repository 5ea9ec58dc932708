# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run test test-client setup bench screenshot

run: ## set up (runtime only) and run akener on the embedded SQLite database; PORT=9000 to move it
	scripts/setup
	.venv/bin/akener serve $(if $(PORT),--port $(PORT))

test: ## set up and run every check and test (SQLite, and PostgreSQL when reachable)
	scripts/test

test-client: ## only the Python client (clients/python), in its own environment, against real servers
	scripts/setup --dev
	scripts/test-client

setup: ## the runtime only; `scripts/setup --dev` adds the test and browser tooling
	scripts/setup

bench: ## forward-auth and API throughput against a raw ASGI floor (see bench/README.md)
	scripts/setup --dev
	.venv/bin/python bench/run.py

screenshot: ## regenerate docs/dashboard-keys.png from a real server in headless Chromium
	scripts/setup --dev
	.venv/bin/python -m tests.browser.screenshot
