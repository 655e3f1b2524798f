#!/usr/bin/env bash
# Build upstream firewalld releases from the vendored sources, once per machine, each into its
# own prefix in a cache outside the repository (the lab runs them per host: tests/lab/lab.sh).
#
#   tests/lab/firewalld-build.sh 0.9.11 2.5.0 ...   build (idempotent), print each prefix
#   tests/lab/firewalld-build.sh --prefix 0.9.11     print the prefix of a built release
#
# VORLAB_FIREWALLD_SOURCES  the release tarballs (default ../shared/vendor/firewalld beside the
#                           checkout); VORLAB_CACHE  the cache (default /var/cache/vorlab).
# A prefix is complete or absent: it is built in a private temporary directory and renamed
# into place, with the tarball's SHA-256 in its stamp; a changed tarball is built again.
#
# 0.9 imports python-slip, which Debian 12 does not package: a stand-in for the few calls it
# makes (a service object, the system bus; polkit checks are no-ops, only root calls the lab's
# private buses) is installed inside that release's firewall package (firewall/_vorlab/slip,
# put on sys.path by two lines appended to firewall/__init__.py), so that binding the one
# directory firewall/ over Debian's makes a host run the release.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCES=${VORLAB_FIREWALLD_SOURCES:-$(cd "$HERE/../../.." && pwd)/shared/vendor/firewalld}
CACHE=${VORLAB_CACHE:-/var/cache/vorlab}
PACKAGES=(autoconf automake intltool libglib2.0-dev-bin gettext make ipset python3-decorator python3-dbus python3-gi python3-nftables)

die() { printf 'firewalld-build: ERROR: %s\n' "$*" >&2; exit 1; }

prefix_of() { printf '%s/firewalld-%s\n' "$CACHE" "$1"; }

site_packages() {                  # prefix: where its python package went
    local d
    d=$(find "$1/lib" -maxdepth 3 -type d -name firewall -path '*-packages/*' -print -quit 2>/dev/null)
    [[ -n $d ]] || return 1
    dirname "$d"
}

install_slip() {                   # the release's firewall/ package
    cat >>"$1/__init__.py" <<'EOF'
import os as _os, sys as _sys  # vorlab: python-slip stand-in (tests/lab/firewalld-build.sh)
_sys.path.append(_os.path.join(_os.path.dirname(__file__), "_vorlab"))
EOF
    set -- "$1/_vorlab"
    mkdir -p "$1/slip/dbus"
    printf '"""Stand-in for python-slip (not packaged on Debian 12) for firewalld 0.9 in the lab."""\n' >"$1/slip/__init__.py"
    cat >"$1/slip/dbus/__init__.py" <<'EOF'
"""The part of slip.dbus firewalld 0.9 uses: the system bus and the two submodules."""
import dbus
from dbus import SystemBus, SessionBus  # noqa: F401
from . import polkit, service  # noqa: F401
EOF
    cat >"$1/slip/dbus/service.py" <<'EOF'
"""slip.dbus.service: a dbus-python service object (slip's persistence and polkit defaults
are attributes firewalld sets; the lab's daemons run until they are killed)."""
import dbus.service


def set_mainloop(mainloop):
    pass


class Object(dbus.service.Object):
    persistent = False
    default_polkit_auth_required = None
EOF
    cat >"$1/slip/dbus/polkit.py" <<'EOF'
"""slip.dbus.polkit: no polkit on the lab's private buses (only root calls them)."""


class NotAuthorizedException(Exception):
    pass


def require_auth(action):
    return lambda method: method


def enable_proxy(func=None, *args, **kwargs):
    if func is None:
        return lambda f: f
    return func
EOF
}

build() {                          # version
    local v=$1 tarball prefix sum tmp src site
    tarball=$SOURCES/firewalld-$v.tar.gz
    [[ -f $tarball ]] || die "no source for firewalld $v: $tarball (releases here: $(find "$SOURCES" -maxdepth 1 -name 'firewalld-*.tar.gz' -printf '%f ' 2>/dev/null | sed 's/firewalld-//g; s/\.tar\.gz//g'))"
    prefix=$(prefix_of "$v")
    sum=$(sha256sum "$tarball" | cut -d' ' -f1)
    if [[ -f $prefix/.vorlab-stamp && $(cat "$prefix/.vorlab-stamp") == "$sum" ]]; then
        echo "$prefix"
        return
    fi
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || die "cannot install ${missing[*]}"
    fi
    mkdir -p "$CACHE"
    tmp=$(mktemp -d "$CACHE/.build-$v.XXXXXX")
    trap 'rm -rf "$tmp"' RETURN
    tar -xzf "$tarball" -C "$tmp"
    src=$tmp/firewalld-$v
    [[ -d $src ]] || die "$tarball does not hold firewalld-$v/"
    # The final prefix is compiled into the scripts; the files go to a staging root first.
    (
        cd "$src"
        ./autogen.sh >"$tmp/autogen.log" 2>&1 || { tail -20 "$tmp/autogen.log" >&2; exit 1; }
        PYTHON=/usr/bin/python3 GLIB_COMPILE_SCHEMAS=/usr/bin/glib-compile-schemas ./configure \
            --prefix="$prefix" --sysconfdir="$prefix/etc" --localstatedir="$prefix/var" \
            --disable-docs --disable-systemd --disable-sysconfig --disable-rpmmacros \
            --with-bashcompletiondir="$prefix/share/bash-completion" \
            --with-zshcompletiondir="$prefix/share/zsh" >"$tmp/configure.log" 2>&1 \
            || { tail -20 "$tmp/configure.log" >&2; exit 1; }
        make -s -j"$(nproc)" >"$tmp/make.log" 2>&1 || { tail -20 "$tmp/make.log" >&2; exit 1; }
        make -s install DESTDIR="$tmp/root" >"$tmp/install.log" 2>&1 || { tail -20 "$tmp/install.log" >&2; exit 1; }
    ) || die "building firewalld $v failed (above: the last lines of its log)"
    site=$(site_packages "$tmp/root$prefix") || die "firewalld $v installed no python package"
    [[ $v == 0.* ]] && install_slip "$site/firewall"
    printf '%s\n' "$sum" >"$tmp/root$prefix/.vorlab-stamp"
    rm -rf "$prefix.old"
    [[ -e $prefix ]] && mv "$prefix" "$prefix.old"
    mv "$tmp/root$prefix" "$prefix"
    rm -rf "$prefix.old"
    echo "$prefix"
}

case ${1:-} in
    --prefix)
        [[ $# -eq 2 ]] || die "usage: $0 --prefix VERSION"
        p=$(prefix_of "$2")
        [[ -f $p/.vorlab-stamp ]] || die "firewalld $2 is not built (run: $0 $2)"
        echo "$p" ;;
    --site-packages)
        [[ $# -eq 2 ]] || die "usage: $0 --site-packages VERSION"
        site_packages "$(prefix_of "$2")" || die "firewalld $2 is not built (run: $0 $2)" ;;
    "" | -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' ;;
    *)
        for v in "$@"; do build "$v"; done ;;
esac
