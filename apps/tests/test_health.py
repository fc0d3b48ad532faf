"""The stall watchdog: a ready process whose loop stops turning says so, and shows where."""
import time

from fraudstream.http import Health


def test_a_stalled_loop_is_not_alive_and_dumps_every_stack(capfd):
    health = Health(stall_seconds=0.3)
    health.set_ready(True)
    health._armed -= 1  # as if armed a second ago: this beat re-arms the watchdog
    health.beat()
    assert health.alive
    time.sleep(0.6)
    assert not health.alive
    assert "most recent call first" in capfd.readouterr().err, "the stacks of the hung process are in its log"
    health.set_ready(False, "restoring")  # a restore is not a stall, and disarms the dump
    assert health.alive


def test_a_turning_loop_stays_alive():
    health = Health(stall_seconds=0.3)
    health.set_ready(True)
    for _ in range(8):
        time.sleep(0.1)
        health.beat()
    assert health.alive
    health.set_ready(False)


def test_no_watchdog_when_disabled():
    health = Health()
    health.set_ready(True)
    health._turned -= 10
    assert health.alive
