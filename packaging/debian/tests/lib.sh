# Shared by the DEP-8 tests in this directory (sourced; they run from the source tree's
# root, as autopkgtest does). Each step prints one line; a failed check prints what it
# saw and the service's recent journal, and exits 1.

UNIT=vfs-notifier
MEDIA=${MEDIA:-debian/tests/media}     # small real containers made with ffmpeg (see README there)
export SYSTEMD_PAGER= SYSTEMD_COLORS=0 LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive

say() { echo "--- $*"; }

# A command that fails under `set -e` shows the service's own account of it too.
trap 'rc=$?; echo "FAIL: line $LINENO exited $rc" >&2; systemctl status --no-pager "$UNIT" >&2 || true; journalctl --no-pager -u "$UNIT" -n 40 >&2 || true' ERR

fail() {
    echo "FAIL: $*" >&2
    journalctl --no-pager -u "$UNIT" -n 40 >&2 || true
    exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: run COMMAND until it succeeds.
wait_for() {
    local limit=$1 what=$2 start=$SECONDS
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ $((SECONDS - start)) -lt "$limit" ] || fail "timed out after ${limit} s waiting for $what"
        sleep 0.3
    done
}

prop() { systemctl show -P "$1" "$UNIT"; }

is_running() { [ "$(prop ActiveState)/$(prop SubState)" = active/running ]; }

# put_video KIND DEST: a real container (mp4, mkv, avi, mov) written at DEST the way an
# upload lands: a temporary name in the same directory, then a rename.
put_video() {
    local kind=$1 dest=$2
    cp "$MEDIA/clip.$kind" "$(dirname "$dest")/.upload.$$.$kind.part"
    mv "$(dirname "$dest")/.upload.$$.$kind.part" "$dest"
}

# The one writable MariaDB database the MySQL tests use; root reaches the server through
# its socket (unix_socket authentication, Debian's default for root).
sql() { mariadb --batch --skip-column-names "${DB:-media}" -e "$1"; }

make_database() {  # make_database NAME USER PASSWORD
    systemctl start mariadb
    wait_for 60 "MariaDB to answer" mariadb -e 'SELECT 1'
    mariadb -e "CREATE DATABASE IF NOT EXISTS \`$1\`;
        CREATE USER IF NOT EXISTS '$2'@'localhost' IDENTIFIED BY '$3';
        CREATE USER IF NOT EXISTS '$2'@'127.0.0.1' IDENTIFIED BY '$3';
        GRANT ALL ON \`$1\`.* TO '$2'@'localhost';
        GRANT ALL ON \`$1\`.* TO '$2'@'127.0.0.1';"
}

# rows_for PATH: how many rows name PATH.
rows_for() { sql "SELECT COUNT(*) FROM videos WHERE des_video_path = '$1'" 2>/dev/null; }
has_row() { [ "$(rows_for "$1")" = 1 ]; }

# The table is an exact mirror of the files below DIR (given as the rows name it, ROWDIR):
# one row per file, no other row, no path twice.
mirrors() {  # mirrors DIR ROWDIR
    local want got
    want=$(cd "$1" && find . -type f ! -name '.*' | sed "s|^\.|$2|" | LC_ALL=C sort)
    got=$(sql "SELECT des_video_path FROM videos WHERE main_dir = '$2'" | LC_ALL=C sort)
    [ "$want" = "$got" ]
}

doubles() { sql "SELECT des_video_path FROM videos GROUP BY des_video_path HAVING COUNT(*) > 1"; }

# The sandbox the service got, namespace by namespace, from the "sandbox-ns NAME ID" lines
# its own main process printed (root in an unprivileged container may not read another
# user's /proc/PID/ns). A container may withhold some (systemd then runs the service
# without them, by design): each missing one is printed as "absent here: ..." and named in
# ABSENT. Where systemd holds CAP_SYS_ADMIN (a machine, a privileged container) none may be.
ABSENT=
sandbox_namespaces() {  # sandbox_namespaces "sandbox-ns lines"
    local ns feature seen
    ABSENT=
    for ns in user:PrivateUsers= mnt:ProtectSystem=/ProtectHome=/PrivateTmp=/PrivateDevices= \
              ipc:PrivateIPC= uts:ProtectHostname=; do
        feature=${ns#*:}; ns=${ns%%:*}
        seen=$(awk -v n="$ns" '$1 == "sandbox-ns" && $2 == n {print $3}' <<<"$1" | tail -n 1)
        [ -n "$seen" ] || fail "the service did not report its $ns namespace: $1"
        if [ "$seen" = "$(readlink "/proc/1/ns/$ns")" ]; then
            echo "absent here: $ns namespace ($feature not applied by this container's systemd)"
            ABSENT="$ABSENT $ns"
        fi
    done
    if [ -n "$ABSENT" ] && systemd_is_privileged; then
        fail "systemd holds CAP_SYS_ADMIN, yet the service has no namespace of its own for:$ABSENT"
    fi
    echo "the service's own namespaces checked (missing:${ABSENT:- none})"
}

# Whether PID 1 holds CAP_SYS_ADMIN (bit 21): false in an unprivileged container.
systemd_is_privileged() {
    local eff
    eff=$(awk '/^CapEff:/ {print $2}' /proc/1/status)
    [ $(( 0x$eff >> 21 & 1 )) -eq 1 ]
}

# A container that refuses user namespaces altogether (Docker's default seccomp profile, LXC
# without nesting) fails PrivateUsers=yes with 217/USER: systemd 252 has no best-effort
# for it. The drop-in docs/PACKAGING.md gives, applied here, and said.
CONTAINER_DROPIN=
without_user_namespaces() {
    [ "$(prop ExecMainStatus)" = 217 ] || return 0
    ! systemd_is_privileged || fail "217/USER although systemd holds CAP_SYS_ADMIN"
    echo "absent here: user namespaces (the container refuses them; the service failed 217/USER)," \
         "so the drop-in PrivateUsers=no from docs/PACKAGING.md is applied"
    CONTAINER_DROPIN=/run/systemd/system/$UNIT.service.d/container.conf
    mkdir -p "$(dirname "$CONTAINER_DROPIN")"
    printf '[Service]\nPrivateUsers=no\n' > "$CONTAINER_DROPIN"
    systemctl daemon-reload
    systemctl reset-failed "$UNIT"
    systemctl restart "$UNIT"
}
