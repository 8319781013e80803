"""The chaos bench's audit rules (bench/chaos/rules.py): key patterns, the text an event log
spells with `reset`, and what a log says about a job. Pure functions: no Redis, no processes."""

from __future__ import annotations

from bench.chaos import rules
from shared import events, keys


def frame(event_id: int, event: str, data: object) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {events.data(data)}\n\n".encode()


def test_ids_become_stars_and_names_stay() -> None:
    assert rules.key_pattern(keys.job("3fa4a1b2c3d4e5f6a7b8c9d0")) == "sidecar:{*}:job"
    assert rules.key_pattern(keys.batch_jobs("b0123456789abcdef0123")) == "sidecar:{batch:*}:jobs"
    assert rules.key_pattern(keys.inflight("claude-sonnet-5-5")) == "sidecar:{limit:*}:inflight"
    assert rules.key_pattern("celery-task-meta-1b4e28ba-2fa1-11d2-883f-0016d3cca427") == (
        "celery-task-meta-*")
    for name in ("interactive", "_kombu.binding.interactive", "sidecar:metrics:requests",
                 "unacked_index", "sidecar:leases"):
        assert rules.key_pattern(name) == name


def test_keys_grouped_by_pattern_most_common_first() -> None:
    names = [keys.job("a1b2c3d4e5f6a7b8c9d0e1f2"), keys.job("0f1e2d3c4b5a69788796a5b4"),
             keys.events("a1b2c3d4e5f6a7b8c9d0e1f2"), "sidecar:workers"]
    assert list(rules.group_keys(names).items()) == [
        ("sidecar:{*}:job", 2), ("sidecar:{*}:events", 1), ("sidecar:workers", 1)]


def test_undocumented_patterns_are_those_no_glob_covers() -> None:
    found = {"sidecar:{limit:*}:buckets": 1, "_kombu.binding_deadlines": 1, "sidecar:{*}:job": 3}
    assert rules.undocumented(found, ["sidecar:{limit:*}:*", "_kombu.binding*"]) == {
        "sidecar:{*}:job": 3}


def test_a_reset_drops_the_failed_attempts_text() -> None:
    log = [("status", {"status": "running"}), ("token", {"text": "Dry "}),
           ("token", {"text": "spel"}), ("reset", {}), ("token", {"text": "Dry "}),
           ("token", {"text": "spell."})]
    assert rules.rebuild_text(log) == "Dry spell."
    assert rules.rebuild_text([("token", {"text": "lost"}), ("reset", {})]) == ""


def test_stored_frames_parse_back_to_events() -> None:
    stored = [frame(1, "status", {"status": "running"}), frame(2, "token", {"text": "a: b"}),
              frame(3, "done", {"status": "succeeded"})]
    assert rules.parse_frames(stored) == [(1, "status", {"status": "running"}),
                                          (2, "token", {"text": "a: b"}),
                                          (3, "done", {"status": "succeeded"})]


def test_text_mismatch_only_for_succeeded_jobs() -> None:
    log = [("token", {"text": "x"}), ("reset", {}), ("token", {"text": "yes"})]
    assert not rules.text_mismatch(log, {"status": "succeeded", "result": {"text": "yes"}})
    assert rules.text_mismatch(log, {"status": "succeeded", "result": {"text": "xyes"}})
    assert not rules.text_mismatch(log, {"status": "failed", "result": None})


def test_requeue_reasons_and_failure_reasons() -> None:
    log = [("status", {"status": "running"}), ("status", {"status": "queued",
                                                          "reason": "worker_lost"}),
           ("status", {"status": "queued", "reason": "worker_lost"}),
           ("status", {"status": "queued", "reason": "worker_shutdown"})]
    assert rules.requeue_reasons(log) == {"worker_lost": 2, "worker_shutdown": 1}
    assert rules.failure_reason({"status": "failed", "error": {"type": "upstream_error"}}) == (
        "failed: upstream_error")
    assert rules.failure_reason({"status": "cancelled", "error": None}) == "cancelled"
