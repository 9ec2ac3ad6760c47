# Shared by the scripts/ commands: install Debian packages that are missing.
# As root it runs apt-get itself (a fresh Debian 12 has nothing); otherwise it
# names the command to run, since without root it cannot install anything.
need_debs() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing: ${missing[*]}" >&2
        if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -q >&2; _APT_UPDATED=1; fi
        _install_without_starting "${missing[@]}"
    else
        echo "missing Debian packages: ${missing[*]}; as root: apt-get install ${missing[*]}" >&2
        return 1
    fi
}

# Debian starts (and enables) a daemon when its package is installed: mariadb-server would
# listen on :3306 and nginx on :80 after a test run that needed neither (the tests start
# their own on free loopback ports). invoke-rc.d and deb-systemd-invoke ask
# /usr/sbin/policy-rc.d first; exit 101 there means "do not start". Whatever policy-rc.d
# the machine had (a Docker image ships one) is put back afterwards, also on failure or
# Ctrl-C: the subshell's traps keep the caller's own traps untouched.
_install_without_starting() (
    policy=/usr/sbin/policy-rc.d
    saved=$(mktemp -d)
    restore() {
        if [ -e "$saved/policy-rc.d" ]; then mv -f "$saved/policy-rc.d" "$policy"; else rm -f "$policy"; fi
        rmdir "$saved"
    }
    [ -e "$policy" ] && cp -a "$policy" "$saved/policy-rc.d"
    trap restore EXIT
    trap 'exit 130' INT TERM HUP
    printf '#!/bin/sh\n# vfs-notifier scripts/lib.sh: no daemon starts while it installs packages\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
)

# Debian's interpreter and libraries are what the .deb runs on, so everything runs there.
PYTHON=${PYTHON:-/usr/bin/python3}
RUNTIME_DEBS=(python3 python3-pyinotify python3-pymysql python3-systemd)
