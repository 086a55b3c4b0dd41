"""Load for the orders service: list, create, read back (``pipeline loadtest orders``).

Reads by id accept 404: through the shared router an order created on one slot is not in
the other slot's database (each release owns its own SQLite file).
"""

from __future__ import annotations

import random

from common import ApiUser
from locust import task


class OrdersUser(ApiUser):
    def on_start(self) -> None:
        self.created: list[int] = []

    @task(3)
    def list_orders(self) -> None:
        self.get_json("/orders?limit=20", name="/orders?limit=20", keys=("orders",))

    @task(2)
    def create_order(self) -> None:
        body = {"item": random.choice(["book", "pen", "lamp", "mug"]), "quantity": random.randint(1, 5)}
        order = self.post_json("/orders", body, expect=(201,), keys=("id", "item"))
        if order is not None:
            self.created = [*self.created[-49:], int(order["id"])]

    @task(3)
    def read_order(self) -> None:
        if self.created:
            order_id = random.choice(self.created)
            self.get_json(f"/orders/{order_id}", name="/orders/[id]", expect=(200, 404))

    @task(1)
    def health(self) -> None:
        self.get_json("/orders/health", keys=("status",))
