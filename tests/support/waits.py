"""Waits that poll a condition until a deadline (never a bare sleep)."""
import time


def wait_until(cond, what, timeout=5.0, every=0.02):
    """Polls `cond()` until it returns something truthy, and returns that;
    after `timeout` seconds fails naming `what` (a string, or a function
    called for the message) and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for "
                                 f"{what() if callable(what) else what} (last: {v!r})")
        time.sleep(every)
