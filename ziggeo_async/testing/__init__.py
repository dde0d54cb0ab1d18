"""Test helpers: ``FakeZiggeo``, an in-memory Ziggeo auth-token API with fault injection.

::

    fake = FakeZiggeo()
    http_client = httpx2.AsyncClient(transport=fake.transport())
    ziggeo = AsyncZiggeo(fake.app_token, fake.private_key, fake.encryption_key,
                         http_client=http_client)
"""

from ._fake import FakeResponse, FakeZiggeo, RecordedRequest

__all__ = ["FakeResponse", "FakeZiggeo", "RecordedRequest"]
