"""A local Apache Kafka broker that the project provisions itself (no Docker needed)."""

from rater.devkit.localkafka.settings import KAFKA_VERSION

__all__ = ["KAFKA_VERSION"]
