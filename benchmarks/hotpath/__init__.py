"""The hot path on real Kafka: see benchmarks/hotpath/run.py."""
