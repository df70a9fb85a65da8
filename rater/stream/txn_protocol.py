"""The Kafka requests that see and end a hanging transaction (KIP-664), for aiokafka.

aiokafka 0.14 speaks the producer side of transactions but has none of the
admin requests Kafka's own ``kafka-transactions.sh`` uses: DescribeProducers
(which producers have a transaction open on a partition), DescribeTransactions
(what the coordinator knows of a transactional id) and WriteTxnMarkers (end a
partition's open transaction at its leader). Their schemas are copied from
Kafka's message definitions (``clients/src/main/resources/common/message``);
aiokafka's own ``Request``/``RequestStruct`` classes encode them, so they go
over the producer's existing connections. Only these flexible versions are
defined; every Kafka since 3.0 serves them.
"""

from __future__ import annotations

from typing import Any

from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    TaggedFields,
)

DESCRIBE_PRODUCERS = 61
DESCRIBE_TRANSACTIONS = 65
WRITE_TXN_MARKERS = 27


class DescribeProducersResponse_v0(Response):
    API_KEY = DESCRIBE_PRODUCERS
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "topics",
            CompactArray(
                ("name", CompactString("utf-8")),
                (
                    "partitions",
                    CompactArray(
                        ("partition_index", Int32),
                        ("error_code", Int16),
                        ("error_message", CompactString("utf-8")),
                        (
                            "active_producers",
                            CompactArray(
                                ("producer_id", Int64),
                                ("producer_epoch", Int32),
                                ("last_sequence", Int32),
                                ("last_timestamp", Int64),
                                ("coordinator_epoch", Int32),
                                ("current_txn_start_offset", Int64),
                                ("tags", TaggedFields),
                            ),
                        ),
                        ("tags", TaggedFields),
                    ),
                ),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class DescribeProducersRequest_v0(RequestStruct):
    API_KEY = DESCRIBE_PRODUCERS
    API_VERSION = 0
    FLEXIBLE_VERSION = True
    RESPONSE_TYPE = DescribeProducersResponse_v0
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("partition_indexes", CompactArray(Int32)),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class DescribeProducersRequest(Request[DescribeProducersRequest_v0]):
    API_KEY = DESCRIBE_PRODUCERS

    def __init__(self, topic: str, partition: int) -> None:
        self._topic = topic
        self._partition = partition

    def build(self, request_struct_class: type[DescribeProducersRequest_v0]) -> RequestStruct:
        return request_struct_class([(self._topic, [self._partition], {})], {})


class DescribeTransactionsResponse_v0(Response):
    API_KEY = DESCRIBE_TRANSACTIONS
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "transaction_states",
            CompactArray(
                ("error_code", Int16),
                ("transactional_id", CompactString("utf-8")),
                ("transaction_state", CompactString("utf-8")),
                ("transaction_timeout_ms", Int32),
                ("transaction_start_time_ms", Int64),
                ("producer_id", Int64),
                ("producer_epoch", Int16),
                (
                    "topics",
                    CompactArray(
                        ("topic", CompactString("utf-8")),
                        ("partitions", CompactArray(Int32)),
                        ("tags", TaggedFields),
                    ),
                ),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class DescribeTransactionsRequest_v0(RequestStruct):
    API_KEY = DESCRIBE_TRANSACTIONS
    API_VERSION = 0
    FLEXIBLE_VERSION = True
    RESPONSE_TYPE = DescribeTransactionsResponse_v0
    SCHEMA = Schema(
        ("transactional_ids", CompactArray(CompactString("utf-8"))),
        ("tags", TaggedFields),
    )


class DescribeTransactionsRequest(Request[DescribeTransactionsRequest_v0]):
    API_KEY = DESCRIBE_TRANSACTIONS

    def __init__(self, transactional_id: str) -> None:
        self._transactional_id = transactional_id

    def build(self, request_struct_class: type[DescribeTransactionsRequest_v0]) -> RequestStruct:
        return request_struct_class([self._transactional_id], {})


class WriteTxnMarkersResponse_v1(Response):
    API_KEY = WRITE_TXN_MARKERS
    API_VERSION = 1
    SCHEMA = Schema(
        (
            "markers",
            CompactArray(
                ("producer_id", Int64),
                (
                    "topics",
                    CompactArray(
                        ("name", CompactString("utf-8")),
                        (
                            "partitions",
                            CompactArray(
                                ("partition_index", Int32),
                                ("error_code", Int16),
                                ("tags", TaggedFields),
                            ),
                        ),
                        ("tags", TaggedFields),
                    ),
                ),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class WriteTxnMarkersRequest_v1(RequestStruct):
    API_KEY = WRITE_TXN_MARKERS
    API_VERSION = 1
    FLEXIBLE_VERSION = True
    RESPONSE_TYPE = WriteTxnMarkersResponse_v1
    SCHEMA = Schema(
        (
            "markers",
            CompactArray(
                ("producer_id", Int64),
                ("producer_epoch", Int16),
                ("transaction_result", Boolean),
                (
                    "topics",
                    CompactArray(
                        ("name", CompactString("utf-8")),
                        ("partition_indexes", CompactArray(Int32)),
                        ("tags", TaggedFields),
                    ),
                ),
                ("coordinator_epoch", Int32),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class WriteTxnMarkersRequest(Request[WriteTxnMarkersRequest_v1]):
    """One marker for one partition: ``commit`` True writes COMMIT, False ABORT."""

    API_KEY = WRITE_TXN_MARKERS

    def __init__(
        self,
        topic: str,
        partition: int,
        producer_id: int,
        producer_epoch: int,
        coordinator_epoch: int,
        commit: bool,
    ) -> None:
        self._marker: tuple[Any, ...] = (
            producer_id,
            producer_epoch,
            commit,
            [(topic, [partition], {})],
            coordinator_epoch,
            {},
        )

    def build(self, request_struct_class: type[WriteTxnMarkersRequest_v1]) -> RequestStruct:
        return request_struct_class([self._marker], {})
