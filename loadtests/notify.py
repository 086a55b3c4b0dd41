"""Load for the notify function: send notifications (``pipeline loadtest notify``)."""

from __future__ import annotations

import random

from common import ApiUser
from locust import task


class NotifyUser(ApiUser):
    @task(5)
    def order_created(self) -> None:
        body = {
            "template": "order_created",
            "to": f"user{random.randint(1, 1000)}@example.com",
            "channel": random.choice(["email", "sms", "push"]),
            "params": {"name": "Ann", "order_id": random.randint(1, 10_000)},
        }
        self.post_json("/notify", body, name="/notify", expect=(202,), keys=("id", "message"))

    @task(1)
    def health(self) -> None:
        self.get_json("/notify/health", keys=("status",))
