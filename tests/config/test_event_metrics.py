"""``config.metrics.EventMetrics``: which of an event's occurrences are timed."""

from config.metrics import EventMetrics


def test_one_in_n_is_timed_the_first_included():
    measured = EventMetrics("/test-sampling", "test:event", 4)
    timed = [measured.start() is not None for _ in range(9)]
    assert timed == [True, False, False, False, True, False, False, False, True]
    every = EventMetrics("/test-sampling", "test:other", 1)
    assert all(every.start() is not None for _ in range(3))
