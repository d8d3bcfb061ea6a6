"""Retries: the receiver's status decides whether to retry; the policy decides
how long to wait and when to stop."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.domain.retry import AttemptFailed, PermanentError, RetryPolicy, TemporaryError, classify

policies = st.builds(
    lambda initial, factor, ratio, attempts, jitter: RetryPolicy(
        initial_s=initial, factor=factor, max_delay_s=initial * ratio, max_attempts=attempts, jitter=jitter
    ),
    initial=st.floats(min_value=1e-4, max_value=10),
    factor=st.floats(min_value=1, max_value=10),
    ratio=st.floats(min_value=0.01, max_value=1e6),
    attempts=st.integers(min_value=1, max_value=50),
    jitter=st.floats(min_value=0, max_value=1),
)
attempts = st.integers(min_value=1, max_value=10_000)
seeds = st.integers(min_value=0, max_value=2**32)


# -- the receiver's answer -------------------------------------------------------


@given(st.integers(min_value=200, max_value=299))
def test_a_2xx_answer_is_delivered(status: int) -> None:
    assert classify(status) is None


@given(st.one_of(st.integers(min_value=500, max_value=599), st.sampled_from([408, 429])))
def test_5xx_408_and_429_are_temporary(status: int) -> None:
    with pytest.raises(TemporaryError) as caught:
        classify(status)
    assert caught.value.status == status
    assert caught.value.delay is None  # the policy's backoff applies


@given(st.integers(min_value=100, max_value=499).filter(lambda s: not 200 <= s < 300 and s not in (408, 429)))
def test_other_answers_redirects_included_are_permanent(status: int) -> None:
    with pytest.raises(PermanentError) as caught:
        classify(status)
    assert caught.value.status == status


def test_both_errors_are_delivery_errors_with_a_reason() -> None:
    temporary = TemporaryError("busy", delay=2.5, status=503)
    permanent = PermanentError("gone", status=410)
    assert isinstance(temporary, AttemptFailed)
    assert isinstance(permanent, AttemptFailed)
    assert (temporary.reason, temporary.delay, temporary.status) == ("busy", 2.5, 503)
    assert (str(permanent), permanent.status) == ("gone", 410)
    assert not isinstance(permanent, TemporaryError)


# -- the backoff -----------------------------------------------------------------


@given(policies, attempts, seeds)
def test_no_delay_exceeds_the_cap_or_falls_below_the_jitter_floor(policy: RetryPolicy, attempt: int, seed: int) -> None:
    delay = policy.delay(attempt, random.Random(seed))
    base = policy.base_delay(attempt)
    assert base <= policy.max_delay_s
    assert base * (1 - policy.jitter) <= delay <= base
    assert delay <= policy.max_delay_s


@given(policies, attempts)
def test_the_base_delay_never_decreases(policy: RetryPolicy, attempt: int) -> None:
    assert policy.base_delay(attempt) <= policy.base_delay(attempt + 1)


@given(policies, attempts, seeds)
def test_with_the_same_draw_a_later_attempt_never_waits_less(policy: RetryPolicy, attempt: int, seed: int) -> None:
    """So the expected delay, b(n) * (1 - jitter / 2), never decreases either."""
    earlier = policy.delay(attempt, random.Random(seed))
    later = policy.delay(attempt + 1, random.Random(seed))
    assert earlier <= later


@given(st.integers(min_value=1, max_value=30))
def test_without_jitter_the_backoff_doubles_up_to_the_cap(attempt: int) -> None:
    policy = RetryPolicy(initial_s=0.1, factor=2.0, max_delay_s=30.0, jitter=0)
    assert policy.delay(attempt, random.Random(0)) == pytest.approx(min(30.0, 0.1 * 2 ** (attempt - 1)))


def test_the_default_policy_backs_off_from_100_ms_to_30_s() -> None:
    policy = RetryPolicy(jitter=0)
    assert [policy.base_delay(n) for n in range(1, 11)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0]
    )


def test_jitter_spreads_retries_that_failed_together() -> None:
    policy = RetryPolicy(initial_s=1.0, jitter=0.2)
    rng = random.Random(7)
    delays = [policy.delay(1, rng) for _ in range(1000)]
    assert min(delays) >= 0.8
    assert max(delays) <= 1.0
    assert len(set(delays)) > 900
    assert sum(delays) / len(delays) == pytest.approx(0.9, abs=0.01)


def test_a_cap_below_the_first_delay_caps_every_delay() -> None:
    policy = RetryPolicy(initial_s=60, max_delay_s=30, jitter=0)
    assert [policy.delay(n, random.Random()) for n in (1, 2, 10)] == [30, 30, 30]


def test_a_huge_attempt_number_waits_the_cap_without_overflowing() -> None:
    assert RetryPolicy().base_delay(10**9) == 30.0


# -- when to stop ---------------------------------------------------------------


@given(policies, seeds)
def test_a_delivery_that_always_fails_is_attempted_exactly_max_attempts_times(policy: RetryPolicy, seed: int) -> None:
    rng = random.Random(seed)
    made = 0
    while True:
        made += 1  # an attempt, which fails
        if not policy.should_retry(made):
            break
        policy.delay(made, rng)
    assert made == policy.max_attempts
    assert len(list(policy.delays(random.Random(seed)))) == policy.max_attempts - 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": 0},
        {"factor": 0.5},
        {"max_delay_s": 0},
        {"max_attempts": 0},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
def test_a_policy_that_cannot_work_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_attempts_are_numbered_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        RetryPolicy().delay(0, random.Random())
