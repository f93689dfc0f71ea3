"""Benchmark-only: several benchmark databases in one process, so that sizes can be measured
interleaved (10k, 100k, 1M, 10k, ...) and suffer the same competition for the cores. Every
query without an explicit `using()` goes to the database chosen with `using(alias)`."""

import contextvars
from contextlib import contextmanager

ACTIVE = contextvars.ContextVar("bench_database", default=None)


class SizeRouter:
    def db_for_read(self, model, **hints):
        return ACTIVE.get()

    def db_for_write(self, model, **hints):
        return ACTIVE.get()

    def allow_relation(self, obj1, obj2, **hints):
        return True


@contextmanager
def using(alias: str):
    token = ACTIVE.set(alias)
    try:
        yield
    finally:
        ACTIVE.reset(token)
