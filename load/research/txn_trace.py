"""A rater worker whose aiokafka producers print every transactional step (issue 16).

Run as ``python -m load.research.txn_trace worker --loglevel info`` (same arguments as
``rater worker``). It wraps aiokafka 0.14's sender handlers and transaction
manager so the worker's log shows, per transactional id, the exact sequence of
InitProducerId, AddPartitionsToTxn, Produce (with producer id, epoch and base
sequence read from each batch's header), EndTxn, and every state change,
including commits completed locally without an EndTxn (the empty-transaction
shortcut). Lines start with ``TXN`` and a wall-clock time, so they can be put
side by side with the broker's server.log. Research tooling only: the worker's
behaviour is unchanged.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.producer import message_accumulator as acc
from aiokafka.producer import sender as snd
from aiokafka.producer import transaction_manager as tm


def trace(*parts: Any) -> None:
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}"
    sys.stderr.write(f"TXN {stamp} " + " ".join(str(p) for p in parts) + "\n")
    sys.stderr.flush()


def _tid(handler: Any) -> str:
    manager = handler._sender._txn_manager
    return f"{manager.transactional_id}[{manager.producer_id}/{manager.producer_epoch}]"


def _header(buffer: bytes) -> str:
    """Producer id, epoch, base sequence and record count of a v2 record batch."""
    pid, epoch, seq = struct.unpack_from(">qhi", buffer, 43)
    (count,) = struct.unpack_from(">i", buffer, 57)
    return f"pid={pid} epoch={epoch} seq={seq} n={count}"


def _wrap(cls: Any, name: str, before: Any = None, after: Any = None) -> None:
    original = getattr(cls, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if before is not None:
            before(self, *args, **kwargs)
        result = original(self, *args, **kwargs)
        if after is not None:
            after(self, result, *args, **kwargs)
        return result

    setattr(cls, name, wrapper)


def _wrap_async(cls: Any, name: str, before: Any = None, after: Any = None) -> None:
    original = getattr(cls, name)

    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if before is not None:
            before(self, *args, **kwargs)
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            if after is not None:
                after(self, exc, *args, **kwargs)
            raise
        if after is not None:
            after(self, result, *args, **kwargs)
        return result

    setattr(cls, name, wrapper)


def install() -> None:
    # Experimental control: RC_PRODUCER_REQUEST_TIMEOUT_MS raises the producers' request
    # timeout, which is also how long aiokafka keeps a batch whose partition has no leader
    # before failing it (drain_by_nodes); with the slow restarts of a loaded machine the
    # default 40 s expires batches that a fast restart would have delivered.
    timeout = os.environ.get("RC_PRODUCER_REQUEST_TIMEOUT_MS")
    if timeout:
        original_init = AIOKafkaProducer.__init__

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("request_timeout_ms", int(timeout))
            original_init(self, *args, **kwargs)

        AIOKafkaProducer.__init__ = init  # type: ignore[method-assign]

    # Transaction manager: every state change and what the transaction holds at that moment.
    def transition(self: Any, target: Any) -> None:
        trace(
            "STATE",
            f"{self.transactional_id}[{self.producer_id}/{self.producer_epoch}]",
            f"{self.state.name}->{target.name}",
            "txn_partitions=",
            sorted(f"{t.topic}-{t.partition}" for t in self._txn_partitions),
            "pending=",
            sorted(f"{t.topic}-{t.partition}" for t in self._pending_txn_partitions),
        )

    _wrap(tm.TransactionManager, "_transition_to", before=transition)
    _wrap(
        tm.TransactionManager,
        "error_transaction",
        before=lambda self, exc: trace("ERROR_TXN", self.transactional_id, repr(exc)),
    )
    _wrap(
        tm.TransactionManager,
        "fatal_error",
        before=lambda self, exc: trace("FATAL_TXN", self.transactional_id, repr(exc)),
    )
    _wrap(
        tm.TransactionManager,
        "is_empty_transaction",
        after=lambda self, result: trace(
            "EMPTY_TXN_CHECK", self.transactional_id, self.state.name, "empty=", result
        ),
    )

    # Requests to the coordinator: what was asked and what came back.
    _wrap(
        snd.InitPIDHandler,
        "handle_response",
        before=lambda self, resp: trace(
            "INIT_PID_RESP",
            self._sender._txn_manager.transactional_id,
            f"err={resp.error_code} pid={resp.producer_id} epoch={resp.producer_epoch}",
        ),
    )
    _wrap(
        snd.AddPartitionsToTxnHandler,
        "create_request",
        after=lambda self, req: trace(
            "ADD_PARTS_REQ", _tid(self), sorted(f"{t.topic}-{t.partition}" for t in self._tps)
        ),
    )
    _wrap(
        snd.AddPartitionsToTxnHandler,
        "handle_response",
        before=lambda self, resp: trace("ADD_PARTS_RESP", _tid(self), resp.errors),
    )
    _wrap(
        snd.EndTxnHandler,
        "create_request",
        after=lambda self, req: trace("END_TXN_REQ", _tid(self), self._commit_result.name),
    )
    _wrap(
        snd.EndTxnHandler,
        "handle_response",
        before=lambda self, resp: trace("END_TXN_RESP", _tid(self), f"err={resp.error_code}"),
    )
    _wrap_async(
        snd.BaseHandler,
        "do",
        after=lambda self, ok, node: (
            None
            if ok is True or ok is None
            else trace("REQ_RETRY", type(self).__name__, _tid(self), "result=", repr(ok))
        ),
    )

    # Produce requests: which batches, with which producer state, and the answers.
    def produce_req(self: Any, req: Any) -> None:
        trace(
            "PRODUCE_REQ",
            _tid(self),
            {
                f"{tp.topic}-{tp.partition}": _header(batch.get_data_buffer())
                for tp, batch in self._batches.items()
            },
        )

    _wrap(snd.SendProduceReqHandler, "create_request", after=produce_req)
    _wrap(
        snd.SendProduceReqHandler,
        "handle_response",
        before=lambda self, resp: trace(
            "PRODUCE_RESP",
            _tid(self),
            [(topic, [p[:3] for p in parts]) for topic, parts in resp.topics],
        ),
    )
    _wrap_async(
        snd.SendProduceReqHandler,
        "do",
        after=lambda self, _r, node: (
            trace(
                "PRODUCE_DONE",
                _tid(self),
                "reenqueued=",
                [f"{b.tp.topic}-{b.tp.partition}" for b in self._to_reenqueue],
            )
            if self._to_reenqueue
            else None
        ),
    )

    # Batches that fail (expiry in drain_by_nodes, errors) and batches taken for sending.
    _wrap(
        acc.MessageBatch,
        "failure",
        before=lambda self, exception: trace(
            "BATCH_FAILED",
            f"{self.tp.topic}-{self.tp.partition}",
            repr(exception),
            "retry_count=",
            self.retry_count,
        ),
    )


install()

if __name__ == "__main__":
    from rater.cli import main

    main()
