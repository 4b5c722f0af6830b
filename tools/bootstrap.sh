#!/usr/bin/env bash
# Find or build a free-threaded CPython 3.13t, then make the project's virtual environments.
#
# Order of preference for the interpreter:
#   1. $ZUKI_PYTHON (a GIL build is refused unless ZUKI_ALLOW_GIL=1 is also set)
#   2. python3.13t on PATH
#   3. a cached build under ${XDG_CACHE_HOME:-$HOME/.cache}/zuki/
#   4. a fresh build into that cache from Debian's python3.13 source package
#
# Then .venv (free-threaded: zuki editable + test and bench tools) and .venv-gil (the stock
# python3: the GIL-build test run and the lint tools). Idempotent: with everything in place it takes a
# second or two. Prints the path of the free-threaded venv's python on its last line.
#
# Usage: tools/bootstrap.sh [--ft-only]
set -euo pipefail

CPY_VERSION=3.13.5
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/zuki
PREFIX=$CACHE/cpython-${CPY_VERSION}t
VENV=$ROOT/.venv
GIL_VENV=$ROOT/.venv-gil
FT_ONLY=0
[[ ${1:-} == --ft-only ]] && FT_ONLY=1

say() { printf '[bootstrap] %s\n' "$*" >&2; }
die() {
    printf '[bootstrap] error: %s\n' "$1" >&2
    printf '[bootstrap] to skip the build, point ZUKI_PYTHON at an existing free-threaded 3.13t\n' >&2
    printf '[bootstrap]   (python.org installer, uv python install 3.13t, pyenv install 3.13t, conda):\n' >&2
    printf '[bootstrap]   ZUKI_PYTHON=/path/to/python3.13t make test\n' >&2
    exit 1
}

is_free_threaded() {
    "$1" -c 'import sys, sysconfig; sys.exit(0 if sysconfig.get_config_var("Py_GIL_DISABLED") else 1)' 2>/dev/null
}

# --- 1-3: find an interpreter ------------------------------------------------------------
find_python() {
    if [[ -n ${ZUKI_PYTHON:-} ]]; then
        [[ -x $ZUKI_PYTHON ]] || command -v "$ZUKI_PYTHON" >/dev/null ||
            die "ZUKI_PYTHON=$ZUKI_PYTHON is not an executable"
        if ! is_free_threaded "$ZUKI_PYTHON"; then
            if [[ ${ZUKI_ALLOW_GIL:-0} != 1 ]]; then
                die "ZUKI_PYTHON=$ZUKI_PYTHON is a GIL build; set ZUKI_ALLOW_GIL=1 to use it anyway"
            fi
            say "warning: $ZUKI_PYTHON is a GIL build: nothing will run in parallel (ZUKI_ALLOW_GIL=1)"
        fi
        echo "$ZUKI_PYTHON"
        return
    fi
    if command -v python3.13t >/dev/null && is_free_threaded "$(command -v python3.13t)"; then
        command -v python3.13t
        return
    fi
    if [[ -x $PREFIX/bin/python3.13t ]] && is_free_threaded "$PREFIX/bin/python3.13t"; then
        echo "$PREFIX/bin/python3.13t"
        return
    fi
    build_python
    echo "$PREFIX/bin/python3.13t"
}

# --- 4: build from Debian's source package ---------------------------------------------
debian_mirror() {
    local uri=""
    if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
        uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' /etc/apt/sources.list.d/*.sources |
            grep -v -- '-security' | grep '/debian/\?$' | head -n 1 || true)
    fi
    if [[ -z $uri && -f /etc/apt/sources.list ]]; then
        uri=$(awk '$1 == "deb" || $1 == "deb-src" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' \
            /etc/apt/sources.list | grep -v -- '-security' | head -n 1 || true)
    fi
    echo "$uri"
}

BUILD_DEPS=(libffi-dev libssl-dev zlib1g-dev libbz2-dev liblzma-dev libsqlite3-dev libreadline-dev libncurses-dev uuid-dev)

check_build_tools() {
    local missing=()
    for tool in gcc make apt-get tar; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) || die "cannot build CPython: missing ${missing[*]}"
    missing=()
    for pkg in "${BUILD_DEPS[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return
    if [[ $(id -u) == 0 ]]; then
        say "installing missing build dependencies: ${missing[*]}"
        apt-get update -qq >&2 || die "apt-get update failed (no network to the Debian mirror?)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 ||
            die "apt-get install ${missing[*]} failed"
    else
        die "missing build dependencies; install them with: sudo apt-get install ${missing[*]}"
    fi
}

build_python() {
    check_build_tools
    local mirror
    mirror=$(debian_mirror)
    [[ -n $mirror ]] || die "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
    mkdir -p "$CACHE"
    local work
    work=$(mktemp -d "$CACHE/build.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$work/apt/sources.list"
    local apt_opts=(-o "Dir::Etc::sourcelist=$work/apt/sources.list" -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache" -o "APT::Sandbox::User=root")
    say "[1/4] download: Debian trixie source index from $mirror"
    apt-get "${apt_opts[@]}" update -qq >&2 || die "apt-get update of the private trixie deb-src list failed (no network to $mirror?)"
    say "[1/4] download: python3.13 source package (~23 MB)"
    (cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only python3.13 >&2) ||
        die "apt-get source --download-only python3.13 failed"
    local tarball
    tarball=$(ls "$work"/src/python3.13_*.orig.tar.xz 2>/dev/null | head -n 1)
    [[ -n $tarball ]] || die "the source package had no python3.13_*.orig.tar.xz"
    say "unpacking $(basename "$tarball")"
    tar -xf "$tarball" -C "$work/src"
    local srcdir
    srcdir=$(find "$work/src" -maxdepth 1 -type d -name 'Python-3.13*' | head -n 1)
    [[ -n $srcdir ]] || die "unexpected tarball layout in $tarball"
    local log=$work/build.log
    say "[2/4] configure --disable-gil (log: $log)"
    (cd "$srcdir" && ./configure --disable-gil --prefix="$PREFIX" --with-ensurepip=install >"$log" 2>&1) ||
        { tail -n 30 "$log" >&2; die "configure failed"; }
    say "[3/4] build with $(nproc) jobs (about 2-4 minutes on 2 cores)"
    local n=0
    (cd "$srcdir" && make -j"$(nproc)" >>"$log" 2>&1) &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 15
        n=$((n + 15))
        kill -0 "$pid" 2>/dev/null && say "    ...building (${n}s, $(grep -c '^gcc' "$log" || true) compile steps)"
    done
    wait "$pid" || { tail -n 30 "$log" >&2; die "make failed"; }
    say "[4/4] install into a staging directory, then move into place"
    (cd "$srcdir" && make install DESTDIR="$work/stage" >>"$log" 2>&1) ||
        { tail -n 30 "$log" >&2; die "make install failed"; }
    is_free_threaded "$work/stage$PREFIX/bin/python3.13t" 2>/dev/null || true
    rm -rf "$PREFIX"
    mv "$work/stage$PREFIX" "$PREFIX"
    is_free_threaded "$PREFIX/bin/python3.13t" || { rm -rf "$PREFIX"; die "the build is not free-threaded"; }
    rm -rf "$work"
    trap - EXIT
    say "built $("$PREFIX/bin/python3.13t" -VV)"
}

# --- virtual environments ----------------------------------------------------------------
stamp_of() { cat "$ROOT/pyproject.toml" "$ROOT/tools/bootstrap.sh" | cksum | cut -d' ' -f1; }

make_venv() {
    local python=$1 dir=$2 extras=$3
    local stamp
    stamp="$(stamp_of) $("$python" -c 'import sys; print(sys.version.replace(" ", "_"))')"
    if [[ -x $dir/bin/python && -f $dir/.zuki-stamp && $(cat "$dir/.zuki-stamp") == "$stamp" ]]; then
        return
    fi
    say "creating $dir from $python"
    rm -rf "$dir"
    "$python" -m venv "$dir" || die "$python -m venv failed"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[$extras]" >&2 ||
        die "pip install into $dir failed (no network to the package registry?)"
    echo "$stamp" >"$dir/.zuki-stamp"
}

PY=$(find_python)
make_venv "$PY" "$VENV" test,bench
if [[ $FT_ONLY == 0 ]]; then
    GIL_PY=${ZUKI_GIL_PYTHON:-python3}
    command -v "$GIL_PY" >/dev/null || die "no stock python3 for the GIL-build test run"
    make_venv "$(command -v "$GIL_PY")" "$GIL_VENV" test,lint,chart
fi
echo "$VENV/bin/python"
