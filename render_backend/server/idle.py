"""`serve --idle-exit SECONDS`: a server nobody uses stops by itself.

A warm server left running by `./dev demo` (or started for the add-on) should not hold memory or
a GPU forever. Idle means: no RPC has started for SECONDS (health checks count: a client that
polls is a client) and no job is queued or running. A WatchJob stream open on a running job
keeps it busy through the job, not through the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc


class Activity(grpc.aio.ServerInterceptor):
    """Remembers when the last RPC (any service) started; monotonic seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.last = clock()

    def touch(self) -> None:
        self.last = self.clock()

    async def intercept_service(self, continuation, details):
        self.touch()
        return await continuation(details)


async def wait_until_idle(activity: Activity, busy: Callable[[], bool], idle_s: float, poll_s: float = 1.0) -> None:
    """Return once nothing happened for `idle_s` seconds while `busy()` stayed False."""
    while True:
        if busy():
            activity.touch()  # a job that ends now starts the idle clock now, not at its submission
        elif activity.clock() - activity.last >= idle_s:
            return
        await asyncio.sleep(min(poll_s, max(0.05, idle_s / 4)))
