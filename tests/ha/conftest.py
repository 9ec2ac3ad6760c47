"""Fixtures of the high-availability suite (issue 22): the same scenarios on one MariaDB server
and on a 3-node Galera cluster, several real service instances on one database."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.conftest import Tree
from tests.ha.backends import Instances, Servers
from tests.support.galera import Galera
from tests.support.mariadb import MariaDB


@pytest.fixture(scope="package")
def galera() -> Iterator[Galera]:
    """One 3-node cluster for the tests of this directory, stopped and removed after the last
    of them (the rest of the suite does not pay for three idle servers). Failing to start it
    fails the tests (with the failing node's own error log), never a skip."""
    cluster = Galera()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(params=["mariadb", "galera"])
def servers(request: pytest.FixtureRequest) -> Iterator[Servers]:
    """A fresh database on one MariaDB server, or on the Galera cluster (every node up and
    synced first, whatever the previous test did to them)."""
    if request.param == "mariadb":
        server: MariaDB = request.getfixturevalue("mariadb")
        if not server.running:
            server.start()
        env = server.new_database()
        database = {k: env[k] for k in ("MYSQL_USER", "MYSQL_PASS", "MYSQL_DB_NAME")}
        yield Servers("mariadb", [server], database)
        if not server.running:
            server.start()
        return
    cluster: Galera = request.getfixturevalue("galera")
    cluster.heal()
    database = cluster.new_database()
    yield Servers("galera", list(cluster.nodes), database)
    cluster.heal()
    cluster.drop_database(database["MYSQL_DB_NAME"])


@pytest.fixture
def instances(tree: Tree, servers: Servers) -> Iterator[Instances]:
    group = Instances(tree, servers)
    yield group
    for daemon in group.started:
        daemon.kill()
