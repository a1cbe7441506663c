"""Reproducible benchmarks, run by ``make bench``; each writes JSON under artifacts/bench/."""
