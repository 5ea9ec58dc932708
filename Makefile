# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run test setup bench screenshot

run: ## set up and run akener on the embedded SQLite database
	scripts/setup
	.venv/bin/akener serve

test: ## set up and run every check and test (SQLite, and PostgreSQL when reachable)
	scripts/test

setup:
	scripts/setup

bench: ## forward-auth and API throughput against a raw ASGI floor (see bench/README.md)
	scripts/setup
	.venv/bin/python bench/run.py

screenshot: ## regenerate docs/dashboard-keys.png from a real server in headless Chromium
	scripts/setup
	.venv/bin/python -m tests.browser.screenshot
