#!/bin/sh
# rkbench: install Python wheels (rknn-toolkit-lite2, and numpy/pip when missing) and
# optionally librknnrt.so on a board that has no internet.
#
# `rkbench provision BOARD` downloads the wheels on the host, pushes them and this
# script into the board cache (~/.cache/rkbench/blobs, content-addressed) and runs:
#
#   sh provision-board.sh --python python3 --wheelhouse DIR [--dry-run]
#       [--pip-wheel NAME.whl] [--install NAME.whl]...
#       [--librknnrt BLOB [--librknnrt-dest /usr/lib/librknnrt.so]]
#       -- BLOB=NAME.whl ...
#
# Each BLOB=NAME pair links a pushed blob into DIR under its wheel file name (pip
# reads name, version and tags from it). pip installs the --install wheels with
# --no-index --find-links DIR: nothing is fetched from the network, and
# dependencies come from DIR when the board does not have them already.
# Without pip on the board, the pushed pip wheel runs itself (python3 pip.whl/pip).
#
# Lines starting with "rkbench-provision: " are read by the host; errors go to
# stderr as "rkbench-provision: error: ..." with these exit codes:
#   64 bad arguments   65 python missing or older than 3.8   66 no pip, no pip wheel
#   67 pip install failed   68 numpy not importable afterwards
#   69 librknnrt needs root   70 librknnrt could not be installed
#   71 the pushed pip cannot run (Python < 3.10 without distutils)
# POSIX sh (dash, busybox ash): no arrays, no bash-isms.

set -u
set -f  # no globbing: file names come from the host

say() { printf 'rkbench-provision: %s\n' "$*"; }
die() {
    code=$1
    shift
    printf 'rkbench-provision: error: %s\n' "$*" >&2
    exit "$code"
}

PY=python3
HOUSE=
DRY=0
PIPWHEEL=
LIB=
LIBDEST=/usr/lib/librknnrt.so
INSTALL=

while [ $# -gt 0 ]; do
    case $1 in
        --python) [ $# -ge 2 ] || die 64 "--python needs a value"; PY=$2; shift 2 ;;
        --wheelhouse) [ $# -ge 2 ] || die 64 "--wheelhouse needs a value"; HOUSE=$2; shift 2 ;;
        --dry-run) DRY=1; shift ;;
        --pip-wheel) [ $# -ge 2 ] || die 64 "--pip-wheel needs a value"; PIPWHEEL=$2; shift 2 ;;
        --install) [ $# -ge 2 ] || die 64 "--install needs a value"; INSTALL="$INSTALL $2"; shift 2 ;;
        --librknnrt) [ $# -ge 2 ] || die 64 "--librknnrt needs a value"; LIB=$2; shift 2 ;;
        --librknnrt-dest) [ $# -ge 2 ] || die 64 "--librknnrt-dest needs a value"; LIBDEST=$2; shift 2 ;;
        --) shift; break ;;
        *) die 64 "unknown option: $1" ;;
    esac
done

# -- Python ---------------------------------------------------------------------------
# $PY is split into words on purpose ("python3" or "/opt/py/bin/python3 -X dev").
$PY -c 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 3)' 2>/dev/null
rc=$?
if [ $rc -eq 3 ]; then
    die 65 "$PY is older than Python 3.8 ($($PY -V 2>&1)); install a newer python3 on the board"
elif [ $rc -ne 0 ]; then
    die 65 "$PY does not run on this board (exit $rc); install python3 or give its path with --python"
fi
say "python: $($PY -c 'import sys; print(sys.version.split()[0], sys.executable)')"

# -- the wheelhouse: pushed blobs under their wheel names ---------------------------------
if [ -n "$INSTALL" ] || [ $# -gt 0 ]; then
    [ -n "$HOUSE" ] || die 64 "--wheelhouse is required with wheels"
    rm -rf "$HOUSE"
    mkdir -p "$HOUSE" || die 64 "cannot create $HOUSE"
    trap 'rm -rf "$HOUSE"' EXIT
fi
for pair in "$@"; do
    blob=${pair%%=*}
    name=${pair#*=}
    case $name in
        */* | "" | .*) die 64 "bad wheel name: $name" ;;
    esac
    [ -f "$blob" ] || die 64 "pushed file missing: $blob"
    ln -s "$blob" "$HOUSE/$name" 2>/dev/null || cp "$blob" "$HOUSE/$name" || die 64 "cannot place $name"
    say "wheel: $name"
done

run_pip() {
    if [ -n "$PIPWHEEL" ] && [ "$USE_PIP_WHEEL" = 1 ]; then
        $PY "$HOUSE/$PIPWHEEL/pip" "$@"
    else
        $PY -m pip "$@"
    fi
}

if [ -n "$INSTALL" ]; then
    USE_PIP_WHEEL=0
    if $PY -m pip --version >/dev/null 2>&1; then
        say "pip: $($PY -m pip --version 2>/dev/null | cut -d' ' -f1-2)"
    elif [ -n "$PIPWHEEL" ]; then
        # pip before Python 3.10 needs the whole distutils, which Debian/Ubuntu ship apart
        # (python3-distutils, a dependency of python3-pip): without it pip cannot start
        if ! $PY -c 'import sys; sys.version_info >= (3, 10) or __import__("distutils.cmd")' 2>/dev/null; then
            die 71 "pip cannot run on $PY: Python $($PY -c 'import sys; print("%d.%d" % sys.version_info[:2])') without distutils (Debian/Ubuntu split it off); install python3-distutils or python3-pip on the board (apt-get install python3-pip), then run rkbench provision again"
        fi
        USE_PIP_WHEEL=1
        say "pip is not installed for $PY: running it from $PIPWHEEL (and installing it)"
    else
        die 66 "pip is not installed for $PY and no pip wheel was pushed"
    fi

    set -- install --no-index --find-links "$HOUSE" --disable-pip-version-check --no-warn-script-location
    for name in $INSTALL; do
        set -- "$@" "$HOUSE/$name"
    done
    if [ "$USE_PIP_WHEEL" = 1 ]; then
        say "command: $PY $HOUSE/$PIPWHEEL/pip $*"
    else
        say "command: $PY -m pip $*"
    fi
    if [ "$DRY" = 1 ]; then
        say "dry run: nothing installed"
    else
        out=$(run_pip "$@" 2>&1)
        rc=$?
        if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "externally-managed-environment"; then
            say "note: $PY is marked externally managed (PEP 668); installing with --break-system-packages"
            out=$(run_pip "$@" --break-system-packages 2>&1)
            rc=$?
        fi
        printf '%s\n' "$out"
        if [ $rc -ne 0 ]; then
            die 67 "pip install failed (exit $rc): $(printf '%s' "$out" | grep -v '^ *$' | tail -n 1)"
        fi
        $PY -c 'import numpy' 2>/dev/null || die 68 "numpy still does not import for $PY after the install"
        say "installed:$INSTALL"
    fi
fi

# -- librknnrt.so: atomic replace (temp file in the same folder, then rename) ---------------
if [ -n "$LIB" ]; then
    [ -f "$LIB" ] || die 64 "pushed file missing: $LIB"
    if [ "$(id -u)" != 0 ]; then
        die 69 "installing $LIBDEST needs root: log in as root (--board root@HOST) and run again"
    fi
    dir=$(dirname "$LIBDEST")
    [ -d "$dir" ] || die 70 "$dir does not exist on the board"
    if [ "$DRY" = 1 ]; then
        say "dry run: would install librknnrt.so to $LIBDEST"
    else
        tmp="$LIBDEST.rkbench-tmp.$$"
        if cp "$LIB" "$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$LIBDEST"; then
            if command -v ldconfig >/dev/null 2>&1; then ldconfig 2>/dev/null || true; fi
            say "librknnrt: installed $LIBDEST"
        else
            rm -f "$tmp"
            die 70 "could not write $LIBDEST (read-only or full file system?)"
        fi
    fi
fi
say "done"
exit 0
