"""The budget reservations of one fetched batch of requests, sent to PostgreSQL together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from policy_service.budgets import BudgetStore
from policy_service.reservation import BudgetRequest, Reservation

Reserve = Callable[[BudgetRequest], Awaitable[Reservation]]


class BatchReservations:
    """The budget reservations of one fetched batch, sent to PostgreSQL in one round trip.

    Every record of the batch is decided concurrently; a record that passes the other rules and
    needs a reservation registers it and waits; the others only report that they are evaluated.
    Once every record is evaluated, `flush` reserves the registered ones together, in record
    order (the requests of one task share a partition, so this is their order on the topic), and
    hands each its answer. A database failure is every waiting request's failure (a deny).
    """

    def __init__(self, store: BudgetStore, size: int) -> None:
        self._store = store
        self._unevaluated = set(range(size))
        self._wanted: dict[int, tuple[BudgetRequest, asyncio.Future[Reservation]]] = {}
        self._all_evaluated = asyncio.Event()
        if not self._unevaluated:
            self._all_evaluated.set()

    def evaluated(self, index: int) -> None:
        """Record `index` needs no (more) reservation; idempotent."""
        self._unevaluated.discard(index)
        if not self._unevaluated:
            self._all_evaluated.set()

    def reserver(self, index: int) -> Reserve:
        async def reserve(request: BudgetRequest) -> Reservation:
            future: asyncio.Future[Reservation] = asyncio.get_running_loop().create_future()
            self._wanted[index] = (request, future)
            self.evaluated(index)
            return await future

        return reserve

    async def flush(self) -> None:
        await self._all_evaluated.wait()
        if not self._wanted:
            return
        wanted = [self._wanted[i] for i in sorted(self._wanted)]
        try:
            results = await self._store.reserve_many([request for request, _ in wanted])
        except Exception as exc:
            for _, future in wanted:
                future.set_exception(exc)
            return
        for (_, future), result in zip(wanted, results, strict=True):
            future.set_result(result)
