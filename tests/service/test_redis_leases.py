"""Counts in Redis taken in leases: a busy key costs a round trip per lease, not per request;
a key is never let past its limit however many workers count it, and is refused early by at
most what the other workers hold; close to its limit a key is counted request by request."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterator

import pytest
import redis

from service.rate_counts import RedisCounts, parse_windows
from service.redis_counts import LEASE_MAX, LEASE_SHARE, REDIS_KEY_PREFIX

pytestmark = pytest.mark.redis


@pytest.fixture
def round_trips(monkeypatch) -> list[bytes]:
    """The counting commands sent to Redis, one per round trip (a new connection's own set-up
    commands are not counted)."""
    sent: list[bytes] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        whole = b"".join(command) if isinstance(command, list) else command
        if b"EVALSHA" in whole:
            sent.append(whole)
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent


@pytest.fixture
def key(redis_url) -> Iterator[str]:
    """A key of the test's own in the shared Redis; its counters are removed afterwards."""
    name = f"LIMITER/popliteal-test-{secrets.token_hex(4)}/key:1/global"
    yield name
    admin = redis.Redis.from_url(redis_url)
    try:
        for counter in admin.scan_iter(f"{REDIS_KEY_PREFIX}{name}/*"):
            admin.delete(counter)
    finally:
        admin.close()


def counter(redis_url: str, name: str) -> int:
    admin = redis.Redis.from_url(redis_url)
    try:
        return int(admin.get(name) or 0)
    finally:
        admin.close()


def test_a_busy_key_costs_a_round_trip_per_lease_and_one_worker_sees_exact_counts(
    redis_url, key, round_trips
):
    windows = parse_windows("1000000 per hour;100000 per minute")
    counts = RedisCounts(redis_url, {})
    tallies = [counts.hit(key, windows) for _ in range(500)]
    # Leases of 1, 2, 4, 8 and 16 requests (31), then of LEASE_MAX: 15 more for the 469 left.
    assert LEASE_MAX == 32
    assert len(round_trips) == 5 + 15
    # What each request is told is what a round trip of its own would have said.
    assert [tally.count for tally in tallies] == list(range(1, 501))
    assert [tally.remaining for tally in tallies] == [100_000 - n for n in range(1, 501)]
    assert not any(tally.refused for tally in tallies)
    assert len({int(tally.reset) for tally in tallies}) <= 2  # the minute's end, rounded
    # Counted in Redis before being answered: every lease whole (31 + 15 x 32; 11 unspent).
    assert counter(redis_url, f"{REDIS_KEY_PREFIX}{key}/1000000/1/hour") == 511


def test_close_to_its_limit_a_key_is_counted_request_by_request(redis_url, key, round_trips):
    windows = parse_windows(f"{2 * LEASE_SHARE - 1} per minute")
    counts = RedisCounts(redis_url, {})
    tallies = [counts.hit(key, windows) for _ in range(2 * LEASE_SHARE + 2)]
    assert len(round_trips) == len(tallies)
    assert [tally.refused for tally in tallies] == [False] * (2 * LEASE_SHARE - 1) + [True] * 3


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_together_never_get_more_than_the_limit_and_lose_at_most_what_others_hold(
    redis_url, key, workers
):
    """Workers take turns at random; the key gets at most its limit, and is refused early by
    at most the leases the other workers hold (each at most a tenth of what was left)."""
    limit = 400
    windows = parse_windows(f"{limit} per minute")
    pool = [RedisCounts(redis_url, {}) for _ in range(workers)]
    turns = random.Random(workers)
    served = sum(not turns.choice(pool).hit(key, windows).refused for _ in range(3 * limit))
    assert served <= limit
    assert served >= limit - (workers - 1) * (limit // LEASE_SHARE)
    assert counter(redis_url, f"{REDIS_KEY_PREFIX}{key}/{limit}/1/minute") >= limit


def test_a_lease_ends_with_its_shortest_window_and_an_unspent_one_starts_again_at_one(
    redis_url, key, round_trips
):
    windows = parse_windows("1000000 per hour;100000 per second")
    counts = RedisCounts(redis_url, {})
    for _ in range(6):  # leases of 1, 2 and 4: the last has one request left
        counts.hit(key, windows)
    assert len(round_trips) == 3
    second_ends = counts.hit(key, windows).reset  # spends it: no round trip
    assert len(round_trips) == 3
    time.sleep(max(0.0, second_ends - time.time()) + 0.05)
    fresh = counts.hit(key, windows)  # a new second: a new lease, of 8 (the last was used up)
    assert (fresh.count, len(round_trips)) == (1, 4)
    for _ in range(3):
        counts.hit(key, windows)
    time.sleep(max(0.0, fresh.reset - time.time()) + 0.05)
    first = counts.hit(key, windows)  # 4 of the 8 were unspent when their second ended,
    second = counts.hit(key, windows)  # so this lease was of one request, and the next of two
    assert (first.count, second.count, len(round_trips)) == (1, 2, 6)
    # The hour counted every lease whole: what was answered, and the 4 left unspent.
    assert counter(redis_url, f"{REDIS_KEY_PREFIX}{key}/1000000/1/hour") == 7 + 8 + 1 + 2
