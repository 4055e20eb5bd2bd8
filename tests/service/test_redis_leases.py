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


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()) + 0.05)


def test_an_unspent_lease_goes_back_to_the_windows_still_open_so_one_worker_counts_exactly(
    redis_url, key, round_trips
):
    windows = parse_windows("1000 per second;200 per hour")
    counts = RedisCounts(redis_url, {})
    tallies = [counts.hit(key, windows) for _ in range(8)]  # leases of 1, 2, 4, then 8
    assert len(round_trips) == 4
    hour = f"{REDIS_KEY_PREFIX}{key}/200/1/hour"
    assert counter(redis_url, hour) == 15  # the whole lease of 8 is counted, 7 of it unspent
    sleep_until(tallies[-1].reset)  # the second ends, and the lease with it
    fresh = counts.hit(key, windows)
    # The 7 went back to the hour; the new second's lease is of one (the last was not used up).
    assert (fresh.count, len(round_trips)) == (1, 5)
    assert counter(redis_url, hour) == 9
    # So a worker alone is refused exactly at the limit, whatever its leases.
    served = 9 + sum(not counts.hit(key, windows).refused for _ in range(250))
    assert served == 200


def test_a_lease_cut_short_by_a_longer_window_gives_back_to_the_shorter_one(
    redis_url, key, round_trips
):
    """The two-second window ends halfway through a second: the lease ends with it, and its
    unspent requests go back to the second, which is still the same."""
    windows = parse_windows("100 per 1 second;100000 per 2 seconds")
    counts = RedisCounts(redis_url, {})
    started = time.time()
    first = counts.hit(key, windows)  # both windows start
    sleep_until(started + 1.4)  # the first second has ended; the two seconds have not
    tallies = [counts.hit(key, windows) for _ in range(8)]  # leases of 1, 2, 4, 8: 7 unspent
    assert [tally.count for tally in tallies] == list(range(1, 9))
    assert tallies[-1].reset > started + 2.2  # this second ends after the two seconds do
    sleep_until(started + 2.0)
    after = counts.hit(key, windows)
    assert after.count == 9  # not 16: the 7 unspent went back to the second still open
    assert counter(redis_url, f"{REDIS_KEY_PREFIX}{key}/100000/2/second") == 1
    assert first.count == 1


def test_leases_grow_only_while_used_up_within_their_window(redis_url, key, round_trips):
    windows = parse_windows("1000000 per hour;100000 per second")
    counts = RedisCounts(redis_url, {})
    for _ in range(6):  # leases of 1, 2 and 4: the last has one request left
        counts.hit(key, windows)
    assert len(round_trips) == 3
    last = counts.hit(key, windows)  # spends it: no round trip
    assert len(round_trips) == 3
    sleep_until(last.reset)
    # A new second: the lease of 4 was used up, but in the second before, so the key starts
    # again at one; then two, as that one was used up within this second.
    assert [counts.hit(key, windows).count for _ in range(3)] == [1, 2, 3]
    assert len(round_trips) == 5
    assert counter(redis_url, f"{REDIS_KEY_PREFIX}{key}/1000000/1/hour") == 7 + 3


def test_a_lease_ends_on_time_even_when_the_wall_clock_is_set_back(
    redis_url, key, round_trips, monkeypatch
):
    windows = parse_windows("1000000 per hour;100000 per second")
    counts = RedisCounts(redis_url, {})
    for _ in range(4):  # leases of 1 and 2, then one of 4 with 3 left
        counts.hit(key, windows)
    assert len(round_trips) == 3
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 5)  # NTP steps the clock back
    time.sleep(1.1)  # the second has ended in Redis
    assert counts.hit(key, windows).count == 1  # a new second's lease, not the old one's
    assert len(round_trips) == 4


def test_windows_are_counted_shortest_first_by_their_length_not_their_unit():
    windows = parse_windows("1000 per 120 seconds;100 per 1 minute")
    assert [window.seconds for window in windows] == [60, 120]


def test_a_round_trip_that_fails_after_redis_ran_it_never_gives_back_twice(
    redis_url, key, monkeypatch
):
    """Redis ran the script but its answer was lost (a timeout): what the lease gave back must
    not be given back again by the next round trip."""
    windows = parse_windows("1000 per second;200 per hour")
    counts = RedisCounts(redis_url, {})
    tallies = [counts.hit(key, windows) for _ in range(8)]  # leases of 1, 2, 4, then 8
    hour = f"{REDIS_KEY_PREFIX}{key}/200/1/hour"
    sleep_until(tallies[-1].reset)
    ask = counts._ask

    def answer_lost(*args):
        ask(*args)
        raise redis.exceptions.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(counts, "_ask", answer_lost)
    with pytest.raises(redis.exceptions.TimeoutError):
        counts.hit(key, windows)
    assert counter(redis_url, hour) == 15 - 7 + 1  # the 7 unspent went back, once
    monkeypatch.setattr(counts, "_ask", ask)
    counts.hit(key, windows)
    assert counter(redis_url, hour) == 9 + 1  # a new lease of one; nothing given back again


def test_a_limit_written_twice_is_one_limit():
    assert len(parse_windows("30 per second;30 per second;600 per minute")) == 2
