"""Benchmark: which Celery pool holds a worker's streaming Claude calls best (threads, gevent,
or threads handing calls to one asyncio loop). Run `python -m bench.pools`."""
