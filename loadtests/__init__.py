"""Seeding, benchmarks (wrk) and load tests (locust): `make seed`, `make bench`, `make loadtest`."""
