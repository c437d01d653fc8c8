"""Knowing when a new kernel is ready: the kernel client nbflow's kernels use, and the probe the pool makes.

Both raise `KernelStartTimeout` when a kernel does not answer in time, so that the caller can start another
(starts hang now and then when several kernels start at once), and jupyter_client's RuntimeError when the kernel
died while starting (nothing a new start would fix). This module imports jupyter_client and ZeroMQ: the run
layer imports it only once kernels are wanted.
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

import zmq
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_core.utils import ensure_async, run_sync

IOPUB_SETTLE_S = 0.05
RECONNECT_MS = 5
DIED = "Kernel died before replying to kernel_info"


class KernelStartTimeout(RuntimeError):
    """A kernel that was started did not answer within its start timeout."""

    def __init__(self, timeout: float):
        super().__init__(f"Kernel didn't respond in {timeout:.0f} seconds")
        self.timeout = timeout


class ReadyKernelClient(AsyncKernelClient):
    """jupyter_client's async client, with a readiness wait that costs a task no fixed delay.

    jupyter_client's `wait_for_ready` ends with a 0.2 s wait for IOPub to fall silent, paid by every task. This
    one knows IOPub works once the `idle` status of its own kernel_info request arrives there; until it does (a
    subscription still settling: the status went out before the client was listening), it asks again soon: a
    round trip costs milliseconds, a long wait for a lost message is paid in full.
    """

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        limit = float("inf") if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            msg_id = self.kernel_info()
            reply = await self._reply_to(msg_id)
            if reply is not None and await self._idle_after(msg_id):
                self._handle_kernel_info_reply(reply)
                return
            if not await self.is_alive():
                raise RuntimeError(DIED)
            if time.monotonic() > deadline:
                raise KernelStartTimeout(limit)

    async def _reply_to(self, msg_id: str) -> dict[str, Any] | None:
        try:
            while True:
                msg = await ensure_async(self.shell_channel.get_msg(timeout=1))
                if msg["parent_header"].get("msg_id") == msg_id:
                    reply: dict[str, Any] = msg
                    return reply
        except Empty:
            return None

    async def _idle_after(self, msg_id: str) -> bool:
        try:
            while True:
                msg = await ensure_async(self.iopub_channel.get_msg(timeout=IOPUB_SETTLE_S))
                if (
                    msg["parent_header"].get("msg_id") == msg_id
                    and msg["msg_type"] == "status"
                    and msg["content"].get("execution_state") == "idle"
                ):
                    return True
        except Empty:
            return False


def wait_listening(km: Any, timeout: float) -> None:
    """Return once the kernel of `km` answers on its shell channel.

    A client that connects before the kernel has bound its sockets waits out ZeroMQ's reconnect interval and
    misses IOPub messages: hundreds of milliseconds that a task taking a warm kernel would pay. This probe, made
    just after the start, retries its connection every RECONNECT_MS instead of ZeroMQ's default 100 ms.
    """
    deadline = time.monotonic() + timeout
    context = zmq.Context()
    context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
    kc = BlockingKernelClient(context=context)
    kc.load_connection_info(km.get_connection_info())
    kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
    try:
        kc.kernel_info()
        while True:
            try:
                kc.get_shell_msg(timeout=0.1)
                return
            except Empty:
                if not run_sync(km.is_alive)():
                    raise RuntimeError(DIED) from None
                if time.monotonic() > deadline:
                    raise KernelStartTimeout(timeout) from None
    finally:
        kc.stop_channels()
        context.destroy(linger=0)
