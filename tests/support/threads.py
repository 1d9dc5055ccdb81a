"""Running one function in several threads at once, for the tests that show
concurrent runs of a job do each thing once."""
from __future__ import annotations

import threading
from typing import Callable


def run_at_once(function: Callable[[], object], count: int, timeout: float = 60) -> tuple[list, list]:
    """Call `function` from `count` threads; returns (results, exceptions)."""
    results, errors = [], []

    def run():
        try:
            results.append(function())
        except Exception as err:  # noqa: BLE001 - handed back to the test
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results, errors
