#!/usr/bin/env bash
# The test command behind `make test`: three pytest runs, all of which must pass.
#   1. the whole suite on the free-threaded interpreter, under coverage (printed at the end);
#   2. the stress tests again with pytest-run-parallel running N copies of each test at once;
#   3. the whole suite on the stock python3 (a GIL build).
# conftest.py fails a free-threaded run that ends with the GIL enabled.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads=${1:-4}
shift || true
FT=.venv/bin/python
GIL=.venv-gil/bin/python
status=0

banner() { printf '\n===== %s =====\n' "$*"; }

rm -f .coverage .coverage.*
banner "free-threaded: $($FT -c 'import sys; print(sys.version.split()[0], "GIL enabled:", sys._is_gil_enabled())')"
$FT -m coverage run -m pytest "$@" || status=1

banner "free-threaded, stress tests under pytest-run-parallel (--parallel-threads=$threads)"
$FT -m pytest -m stress --parallel-threads="$threads" "$@"
rc=$?
# exit code 5: no stress tests collected; anything else non-zero is a failure
if [[ $rc != 0 && $rc != 5 ]]; then status=1; fi

banner "coverage of zuki/ (free-threaded run)"
$FT -m coverage report || status=1

banner "GIL build: $($GIL -c 'import sys; print(sys.version.split()[0])')"
$GIL -m pytest "$@" || status=1

exit $status
