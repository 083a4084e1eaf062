import os

import pytest

from feedback_app.common.cache import RedisCache

REDIS_URL = os.environ.get("REDIS_URL", "")


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (make test's first pass in CI sets it)")
def test_redis_cache_reuses_one_client_and_still_reads_and_writes():
    cache = RedisCache(REDIS_URL, {"KEY_PREFIX": "test-cache-client"})
    cache.set("k", {"v": 1}, 30)
    assert cache.get("k") == {"v": 1}
    client = cache._cache.get_client()
    assert cache._cache.get_client(write=True) is client
    cache.delete("k")
    assert cache.get("k") is None
