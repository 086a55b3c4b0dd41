"""Load for the catalog service: browse pages and products (``pipeline loadtest catalog``)."""

from __future__ import annotations

import random

from common import ApiUser
from locust import task

SEEDED_PRODUCTS = 20  # a new catalog database holds products 1..20


class CatalogUser(ApiUser):
    @task(2)
    def browse(self) -> None:
        self.get_json("/catalog?limit=20", name="/catalog?limit=20", keys=("products",))

    @task(5)
    def product(self) -> None:
        product_id = random.randint(1, SEEDED_PRODUCTS)
        self.get_json(f"/catalog/{product_id}", name="/catalog/[id]", keys=("id", "price_cents"))

    @task(1)
    def health(self) -> None:
        self.get_json("/catalog/health", keys=("status",))
