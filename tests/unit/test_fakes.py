"""The in-memory fakes keep the same contracts as the real adapters, so engine tests on
them mean something (tests/support/store_contract.py)."""

from __future__ import annotations

import pytest

from pipeline.testing import FakeClock, InMemoryStore
from tests.support.store_contract import LockContract, StateStoreContract


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> InMemoryStore:
    return InMemoryStore(clock)


@pytest.fixture
def locks(store: InMemoryStore) -> InMemoryStore:
    return store


class TestInMemoryStoreContract(StateStoreContract):
    """The StateStore contract on the in-memory fake."""


class TestInMemoryLockContract(LockContract):
    """The LockManager contract on the in-memory fake."""
