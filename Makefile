.PHONY: setup up down status test unit integration lint typecheck format

setup:        ## install PostgreSQL/Java/Maven if missing, create .venv, install nearline
	bash deploy/setup.sh
up:           ## start the local Kafka (KRaft) and PostgreSQL
	.venv/bin/nearline dev up
down:         ## stop exactly what `up` started
	.venv/bin/nearline dev down
status:
	.venv/bin/nearline dev status
test:         ## every test; starts the stack on demand (the README's test command)
	.venv/bin/python -m pytest
unit:         ## tests that need no broker or database
	.venv/bin/python -m pytest -m "not integration"
integration:
	.venv/bin/python -m pytest -m integration
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
typecheck:
	.venv/bin/mypy
format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
