"""rename_pairs alone: a MOVED_FROM held for its MOVED_TO, released once it cannot come."""

from __future__ import annotations

from vfs_notifier.rename_pairs import HOLD_SECONDS, Held, RenamePairs


def test_a_pair_is_taken_once_by_its_cookie():
    pairs = RenamePairs()
    pairs.hold(7, "/r/a.mp4", False, now=100.0, chunk=1)
    assert pairs and pairs.paths == {"/r/a.mp4": 7}
    assert pairs.take(8) is None                      # another cookie: moved in from outside
    assert pairs.take(7) == Held("/r/a.mp4", False, 100.0 + HOLD_SECONDS, 1)
    assert not pairs and pairs.paths == {}
    assert pairs.take(7) is None


def test_a_held_one_waits_for_the_next_chunk_even_when_its_time_is_up():
    pairs = RenamePairs()
    pairs.hold(1, "/r/d", True, now=100.0, chunk=3)
    # Chunk 3 was the last parsed and more are waiting: the MOVED_TO may be in chunk 4.
    assert pairs.expired(now=200.0, chunk_no=3, more_waiting=True) == ([], None)
    assert pairs.expired(now=200.0, chunk_no=4, more_waiting=True) == ([Held("/r/d", True, 100.0 + HOLD_SECONDS, 3)], None)
    assert not pairs


def test_a_held_one_waits_its_time_and_says_when_that_is():
    pairs = RenamePairs()
    pairs.hold(1, "/r/a", False, now=100.0, chunk=1)
    pairs.hold(2, "/r/b", False, now=100.001, chunk=1)
    assert pairs.expired(now=100.0, chunk_no=1, more_waiting=False) == ([], 100.0 + HOLD_SECONDS)
    gone, wake_at = pairs.expired(now=100.0 + HOLD_SECONDS + 0.0005, chunk_no=1, more_waiting=False)
    assert [h.path for h in gone] == ["/r/a"] and wake_at == 100.001 + HOLD_SECONDS
    assert pairs.paths == {"/r/b": 2}


def test_expired_releases_oldest_first_and_take_all_empties():
    pairs = RenamePairs()
    for cookie, name in enumerate("cab"):
        pairs.hold(cookie, f"/r/{name}", False, now=float(cookie), chunk=1)
    gone, wake_at = pairs.expired(now=1.0 + HOLD_SECONDS, chunk_no=2, more_waiting=False)
    assert [h.path for h in gone] == ["/r/c", "/r/a"] and wake_at == 2.0 + HOLD_SECONDS
    pairs.hold(9, "/r/z", True, now=3.0, chunk=2)
    assert [h.path for h in pairs.take_all()] == ["/r/b", "/r/z"]
    assert not pairs and pairs.paths == {}
    assert pairs.expired(now=99.0, chunk_no=9, more_waiting=False) == ([], None)


def test_the_paths_dict_is_the_same_object_for_life():
    """The event parser keeps a reference to it for its hot loop."""
    pairs = RenamePairs()
    paths = pairs.paths
    pairs.hold(1, "/r/a", False, now=0.0, chunk=1)
    pairs.take_all()
    pairs.hold(2, "/r/b", False, now=0.0, chunk=1)
    assert pairs.paths is paths and paths == {"/r/b": 2}
