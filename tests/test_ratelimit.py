"""The client-side rate limiter never puts more than its limit into any window, and the teacher uses it."""

import asyncio
import time

from synth.teacher.ratelimit import WindowLimiter
from synth.teacher.client import LiteLLMTeacher, TeacherOptions
from synth.testing import FakeTeacherServer, echo_script


def sent_times(limiter, amounts):
    async def go():
        start, times = time.monotonic(), []
        for amount in amounts:
            await limiter.acquire(amount)
            times.append(time.monotonic() - start)
        return times
    return asyncio.run(go())


def test_a_burst_up_to_the_limit_then_never_more_than_the_limit_per_window():
    times = sent_times(WindowLimiter(5, period=0.5), [1] * 12)
    assert times[4] < 0.1                                   # the first five go at once
    assert times[5] >= 0.5 - 0.01 and times[10] >= 1.0 - 0.01
    for t in times:
        assert sum(t - 0.5 < u <= t for u in times) <= 5     # any window of one period holds at most five


def test_amounts_count_like_tokens():
    times = sent_times(WindowLimiter(100, period=0.4), [60, 30, 30, 200])
    assert times[1] < 0.05                                  # 90 fit together
    assert times[2] >= 0.4 - 0.01                           # 120 would not: wait for the first 60 to leave
    assert times[3] >= times[2] + 0.4 - 0.01                # an amount over the limit counts as the limit


def test_the_teacher_holds_back_requests_past_its_rpm():
    async def go(url):
        teacher = LiteLLMTeacher(TeacherOptions(model="openai/fake-teacher", api_base=url, rpm=5, concurrency=8),
                                 api_key="sk-test")
        calls = [asyncio.ensure_future(teacher.complete([{"role": "user", "content": f"q{i}"}])) for i in range(7)]
        done, pending = await asyncio.wait(calls, timeout=3.0)
        for call in pending:
            call.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await teacher.aclose()
        return len(done)
    with FakeTeacherServer(echo_script) as server:
        finished = asyncio.run(go(server.url))
        assert finished == 5 and len(server.attempts) == 5     # the sixth waits for the minute to slide
