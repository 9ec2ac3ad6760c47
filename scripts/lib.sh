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
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    else
        echo "missing Debian packages: ${missing[*]}; run as root, or: sudo apt-get install ${missing[*]}" >&2
        return 1
    fi
}

# Debian's interpreter and libraries are what the .deb runs on, so everything runs there.
PYTHON=${PYTHON:-/usr/bin/python3}
RUNTIME_DEBS=(python3 python3-pyinotify python3-pymysql python3-systemd)
