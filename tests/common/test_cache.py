import os

import pytest
from django.core.cache import caches

REDIS_URL = os.environ.get("REDIS_URL", "")


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (make test's first pass in CI sets it)")
def test_the_redis_cache_keeps_one_client_and_reads_and_writes():
    cache = caches["default"]
    assert type(cache).__module__.startswith("django_redis")
    cache.set("test-cache-client", {"v": 1}, 30)
    assert cache.get("test-cache-client") == {"v": 1}
    assert cache.client.get_client(write=False) is cache.client.get_client(write=False)
    cache.delete("test-cache-client")
    assert cache.get("test-cache-client") is None
