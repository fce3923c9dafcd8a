"""Gate checks that arrive while one runs are judged together, with the verdicts of one-by-one checks."""

import asyncio
import threading
import time

import pytest

from synth.gate.queue import GateQueue


class SlowGate:
    """Records each call; the first one holds until released, so the others pile up behind it."""

    def __init__(self):
        self.calls, self.release = [], threading.Event()

    def check(self, ids, texts):
        self.calls.append(list(ids))
        if len(self.calls) == 1:
            self.release.wait(5)
        return [f"verdict:{i}" for i in ids]


def test_checks_waiting_behind_a_running_one_share_the_next_call():
    gate = SlowGate()

    async def go():
        queue = GateQueue(gate)
        first = asyncio.ensure_future(queue.check(["a1", "a2"], ["x", "y"]))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(queue.check([f"{n}1"], ["z"])) for n in "bcd"]
        await asyncio.sleep(0.05)
        gate.release.set()
        return await first, await asyncio.gather(*rest), queue.calls
    first, rest, calls = asyncio.run(go())
    assert gate.calls == [["a1", "a2"], ["b1", "c1", "d1"]] and calls == 2
    assert first == ["verdict:a1", "verdict:a2"] and rest == [["verdict:b1"], ["verdict:c1"], ["verdict:d1"]]


def test_an_error_reaches_every_check_in_the_batch_and_the_queue_goes_on():
    class Failing:
        def __init__(self):
            self.n = 0

        def check(self, ids, texts):
            self.n += 1
            if self.n == 1:
                time.sleep(0.05)
                raise RuntimeError("embedder broke")
            return ids

    async def go():
        queue = GateQueue(Failing())
        a = asyncio.ensure_future(queue.check(["a"], ["a"]))
        b = asyncio.ensure_future(queue.check(["b"], ["b"]))
        results = await asyncio.gather(a, b, return_exceptions=True)
        return results, await queue.check(["c"], ["c"])
    results, later = asyncio.run(go())
    assert all(isinstance(r, RuntimeError) for r in results) and later == ["c"]


@pytest.mark.slow
def test_a_combined_check_gives_the_verdicts_of_checks_one_after_another():
    from synth.gate.embeddings import shared_embedder
    from synth.gate.novelty import NoveltyGate

    first = (["t1", "t2"], ["Translate the sentence into French.", "Write a haiku about autumn leaves."])
    second = (["t3", "t4"], ["Translate this sentence into French.", "List three uses of baking soda."])
    one_by_one = NoveltyGate(shared_embedder(), 0.9)
    expected = one_by_one.check(*first) + one_by_one.check(*second)

    async def go():
        queue = GateQueue(NoveltyGate(shared_embedder(), 0.9))
        return await asyncio.gather(queue.check(*first), queue.check(*second))
    a, b = asyncio.run(go())
    assert [(v.accepted, v.neighbour_id) for v in a + b] == [(v.accepted, v.neighbour_id) for v in expected]
    assert [v.accepted for v in a + b] == [True, True, False, True]       # t3 repeats t1, across the two checks
