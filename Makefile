# Shortcuts for developers; each target is a script in scripts/ so that a fresh
# Debian machine without make can run the same thing.
.PHONY: run test
run:
	./scripts/run
test:
	./scripts/test

# The Debian package: dist/vfs-notifier_VERSION_all.deb, lintian-checked (no root needed).
.PHONY: deb
deb:
	./scripts/deb

# The benchmark (issue 4): writes docs/PERFORMANCE.md and docs/performance.png; needs root
# to install mariadb-server, inotify-tools and python3-matplotlib on first use.
.PHONY: bench
bench:
	./scripts/bench

# The service through a Galera node beside one server (issue 22): the Galera section of
# docs/PERFORMANCE.md.
.PHONY: bench-galera
bench-galera:
	./scripts/bench-galera --docs docs
