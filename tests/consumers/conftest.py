"""The consumers area uses the embedded-backend factories of tests/conftest.py."""
