"""Timings and counters of one process (a pytest worker, or a script); mergeable across workers."""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from threading import Lock
from typing import Any


class Metrics:
    def __init__(self) -> None:
        self.timings: defaultdict[str, list[float]] = defaultdict(list)
        self.counters: Counter[str] = Counter()
        self.sizes: defaultdict[str, list[int]] = defaultdict(list)  # bytes, per backend
        # per test (nodeid): seconds per phase as the test saw them, and database sizes
        self.tests: defaultdict[str, dict[str, float]] = defaultdict(dict)
        self._lock = Lock()

    def timed_for(self, test: str, phase: str) -> AbstractContextManager[None]:
        """Time a step of one test (setup, snapshot, restore, validation, cleanup)."""
        return _Timed(self, test, f"{phase}_s")

    def note(self, test: str, key: str, value: float) -> None:
        with self._lock:
            entry = self.tests[test]
            entry[key] = entry.get(key, 0.0) + value

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.record(phase, time.perf_counter() - start)

    def record(self, phase: str, seconds: float) -> None:
        with self._lock:
            self.timings[phase].append(seconds)

    def size(self, backend: str, nbytes: int) -> None:
        with self._lock:
            self.sizes[backend].append(nbytes)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "timings": {k: list(v) for k, v in self.timings.items()},
                "counters": dict(self.counters),
                "sizes": {k: list(v) for k, v in self.sizes.items()},
                "tests": {k: dict(v) for k, v in self.tests.items()},
            }

    def merge(self, data: Mapping[str, Any]) -> None:
        with self._lock:
            for phase, values in data.get("timings", {}).items():
                self.timings[phase].extend(values)
            self.counters.update(data.get("counters", {}))
            for backend, values in data.get("sizes", {}).items():
                self.sizes[backend].extend(values)
            for test, entry in data.get("tests", {}).items():
                self.tests[test].update(entry)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per phase: count, median and p95 in milliseconds."""
        out: dict[str, dict[str, float]] = {}
        for phase, values in sorted(self.timings.items()):
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
            out[phase] = {
                "count": len(ordered),
                "median_ms": statistics.median(ordered) * 1000,
                "p95_ms": p95 * 1000,
                "total_ms": sum(ordered) * 1000,
            }
        return out


class _Timed:
    """`Metrics.timed_for`: a class, not a generator (two of them in every test)."""

    __slots__ = ("key", "metrics", "start", "test")

    def __init__(self, metrics: Metrics, test: str, key: str) -> None:
        self.metrics, self.test, self.key = metrics, test, key
        self.start = 0.0

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.metrics.note(self.test, self.key, time.perf_counter() - self.start)
