# The vfs-notifier service in a container, installed from the project's own .deb,
# exactly as on a Debian host (one way of installing).
#
#   scripts/deb                 # builds dist/vfs-notifier_VERSION_all.deb
#   docker compose up -d        # builds this image; see README.md, "Docker"
#
# Configuration comes from environment variables (the earlier service's .env names,
# see docker/env.example) over the packaged /etc/vfs-notifier.toml; logs go to
# stderr (`docker compose logs`) and to LOG_BASE_DIRECTORY.
FROM debian:bookworm-slim

COPY dist/vfs-notifier_*_all.deb /tmp/debs/
# Several builds in dist/: the newest version wins. The package needs systemd-sysusers
# for its system user; in a container without systemd the standalone one does (15 MB
# less than all of systemd).
RUN set -eu; \
    deb=$(ls /tmp/debs/vfs-notifier_*_all.deb | sort -V | tail -n 1); \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "$deb" systemd-standalone-sysusers; \
    rm -rf /var/lib/apt/lists/* /tmp/debs; \
    vfs-notifier --version

# In the foreground as PID 1: SIGTERM (docker stop) ends it cleanly with exit 0.
ENTRYPOINT ["vfs-notifier"]
CMD ["run"]
