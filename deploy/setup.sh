#!/usr/bin/env bash
# One-time set-up of a machine for nearline, safe to run again:
#   - the PostgreSQL server from Debian's packages (skipped when DATABASE_URL is set),
#   - Java and Maven, which fetch and run the Apache Kafka broker,
#   - wrk, the load generator of the HTTP benchmark,
#   - a virtualenv in .venv with nearline and its test extras installed in editable mode,
#   - MovieLens-100K (the recbole wheel's data files, installed without its dependencies),
#   - the Apache Kafka broker's jars, fetched with Maven into the state folder.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
apt_packages=()
if [ -z "${DATABASE_URL:-}" ] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    apt_packages+=(postgresql)
fi
command -v java >/dev/null || apt_packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || apt_packages+=(maven)
# wrk: the HTTP load generator of benchmarks/serving_http.py.
command -v wrk >/dev/null || apt_packages+=(wrk)
if [ ${#apt_packages[@]} -gt 0 ]; then
    echo "setup: installing ${apt_packages[*]} with apt-get"
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${apt_packages[@]}"
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: nearline needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# MovieLens-100K ships inside this wheel. --no-deps: we read its data files and never import
# it (its dependencies include torch). GroupLens's licence forbids committing the data.
.venv/bin/python -m pip install -q --no-deps recbole==1.2.1
# The broker's jars come from Maven once, here, so that the first `nearline dev up` is quick.
.venv/bin/nearline dev fetch
echo "setup: done; the command is .venv/bin/nearline"
