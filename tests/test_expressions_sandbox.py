"""The jq sandbox: hostile expressions fault their task and the next evaluation still works.

These run real sandbox child processes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from itinera.errors import ExpressionError
from itinera.expressions import compile_expression, sandbox

PROBE = "ITINERA_TEST_SANDBOX_PROBE"


@pytest.fixture(autouse=True)
def fresh_pool() -> Iterator[None]:
    """Every test starts and ends without sandbox children (a test may kill them)."""
    sandbox.shutdown()
    yield
    sandbox.shutdown()


def _works() -> None:
    """The sandbox answers normally."""
    expression = compile_expression("[.[] | . * 2] | add")
    assert not expression.native
    assert expression.evaluate([1, 2, 3], {}) == 12


@pytest.mark.parametrize(
    "text",
    ["def f: f; f", "[range(1e9)]", "[repeat(1)]", "last(range(1e10))", 'until(false; .)'],
)
def test_a_runaway_expression_hits_the_time_limit(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "TIME_LIMIT", 0.5)
    with pytest.raises(ExpressionError, match=r"exceeded its 0\.5 s time limit") as caught:
        compile_expression(text).evaluate(None, {})
    assert caught.value.expression == text
    _works()


@pytest.mark.parametrize(
    "text",
    ['"x" * 1e9', '[range(1e8) | {a: .}] | length', 'reduce range(40) as $i ("x"; . + .) | length'],
)
def test_a_memory_bomb_hits_the_memory_limit(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "MEMORY_LIMIT", 128 * 1024 * 1024)
    monkeypatch.setattr(sandbox, "TIME_LIMIT", 30.0)  # so memory, not time, is what stops it
    with pytest.raises(ExpressionError, match=r"128 MiB memory limit"):
        compile_expression(text).evaluate(None, {})
    _works()


def test_a_quadratic_native_operation_on_big_data_is_left_to_the_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox, "TIME_LIMIT", 0.5)
    expression = compile_expression(".a - .b")
    assert expression.native
    assert expression.evaluate({"a": [1, 2, 3], "b": [2]}, {}) == [1, 3]
    big = list(range(60_000))
    with pytest.raises(ExpressionError, match="time limit"):
        expression.evaluate({"a": big, "b": big}, {})


def test_deeply_nested_input_is_an_expression_error() -> None:
    nested: list[Any] = []
    for _ in range(5000):
        nested = [nested]
    with pytest.raises(ExpressionError, match="nested too deeply"):
        compile_expression(".a == .b").evaluate({"a": nested, "b": nested}, {})


def test_the_default_limits_stop_a_memory_bomb() -> None:
    assert sandbox.MEMORY_LIMIT == 512 * 1024 * 1024 and sandbox.TIME_LIMIT == 1.0
    with pytest.raises(ExpressionError, match=r"512 MiB memory limit"):
        compile_expression('"x" * 1e9').evaluate(None, {})
    with pytest.raises(ExpressionError, match=r"exceeded its 1\.0 s time limit"):
        compile_expression("def f: f; f").evaluate(None, {})
    _works()


def test_a_changed_memory_limit_replaces_the_children(monkeypatch: pytest.MonkeyPatch) -> None:
    _works()
    before = sandbox.worker_pids()
    monkeypatch.setattr(sandbox, "MEMORY_LIMIT", 256 * 1024 * 1024)
    _works()
    assert set(sandbox.worker_pids()).isdisjoint(before)


def test_input_and_output_sizes_are_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "MAX_INPUT_BYTES", 1000)
    monkeypatch.setattr(sandbox, "MAX_OUTPUT_BYTES", 1000)
    expression = compile_expression("[.[] | tostring] | join(\",\")")
    with pytest.raises(ExpressionError, match="input is .* bytes serialized; the limit is 1000"):
        expression.evaluate(list(range(1000)), {})
    with pytest.raises(ExpressionError, match="output is .* bytes; the limit is 1000"):
        compile_expression('"x" * 2000').evaluate(None, {})
    assert compile_expression('"x" * 20 | length').evaluate(None, {}) == 20


def test_variables_count_towards_the_input_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "MAX_INPUT_BYTES", 1000)
    expression = compile_expression("[$context[]] | length")
    assert not expression.native
    with pytest.raises(ExpressionError, match="input is"):
        expression.evaluate(None, {"context": {"k": "v" * 2000}})


def test_the_child_sees_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROBE, "secret-value")
    # The guard rejects env and $ENV; below it, the child has no environment to read either.
    with pytest.raises(ExpressionError, match="not allowed"):
        compile_expression(f"env.{PROBE}")
    assert sandbox.evaluate("env", (), None, []) == [{}]
    assert sandbox.evaluate(f"$ENV.{PROBE}", (), None, []) == [None]
    assert sandbox.evaluate('[paths] | length', (), {"a": 1}, []) == [1]


def test_a_child_killed_while_idle_is_replaced_transparently() -> None:
    _works()
    (pid,) = sandbox.worker_pids()
    os.kill(pid, signal.SIGKILL)
    _wait_until_dead(pid)
    _works()
    assert pid not in sandbox.worker_pids()


def test_a_child_that_dies_unnoticed_is_replaced_on_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    _works()
    (pid,) = sandbox.worker_pids()
    # The pool checks a child before using it; make that check miss the death, as a race would.
    monkeypatch.setattr(sandbox._Worker, "alive", property(lambda self: True))
    os.kill(pid, signal.SIGKILL)
    _wait_until_dead(pid)
    _works()
    assert pid not in sandbox.worker_pids()


def test_a_child_killed_while_busy_faults_that_evaluation_only() -> None:
    _works()
    (pid,) = sandbox.worker_pids()
    timer = threading.Timer(0.2, os.kill, (pid, signal.SIGKILL))
    timer.start()
    try:
        with pytest.raises(ExpressionError, match="aborted"):
            compile_expression("last(range(1e10))").evaluate(None, {})
    finally:
        timer.join()
    _works()


def test_concurrent_callers_are_safe() -> None:
    expression = compile_expression("[.xs[] | . + $offset] | add")
    assert not expression.native
    errors: list[BaseException] = []
    results: dict[int, list[Any]] = {}

    def caller(n: int) -> None:
        try:
            results[n] = [
                expression.evaluate({"xs": list(range(n))}, {"offset": i}) for i in range(15)
            ]
        except BaseException as error:  # collected and re-raised below
            errors.append(error)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for n, got in results.items():
        assert got == [sum(range(n)) + n * i for i in range(15)]
    assert len(sandbox.worker_pids()) <= sandbox.POOL_SIZE


def test_a_timeout_in_one_thread_does_not_disturb_another(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "TIME_LIMIT", 0.5)
    outcome: list[str] = []

    def hostile() -> None:
        try:
            compile_expression("def f: f; f").evaluate(None, {})
        except ExpressionError as error:
            outcome.append(str(error))

    thread = threading.Thread(target=hostile)
    thread.start()
    for _ in range(20):
        _works()
    thread.join()
    assert outcome and "time limit" in outcome[0]


def test_it_works_in_a_forked_child() -> None:
    _works()
    parent_workers = sandbox.worker_pids()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running the parent's cleanup
        code = 1
        try:
            os.close(read_end)
            value = compile_expression("[.[] | . + 1]").evaluate([1, 2], {})
            os.write(write_end, orjson.dumps({"value": value, "workers": sandbox.worker_pids()}))
            sandbox.shutdown()
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        report = orjson.loads(reader.read())
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report["value"] == [2, 3]
    assert report["workers"] and set(report["workers"]).isdisjoint(parent_workers)
    assert sandbox.worker_pids() == parent_workers
    _works()  # the parent's own children are untouched


def test_shutdown_stops_the_children_and_a_new_call_starts_fresh() -> None:
    _works()
    pids = sandbox.worker_pids()
    sandbox.shutdown()
    for pid in pids:
        _wait_until_dead(pid)
    _works()


def _wait_until_dead(pid: int) -> None:
    for _ in range(500):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # A zombie still answers kill(0); the pool reaps it, so look at its state.
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} is still running")
