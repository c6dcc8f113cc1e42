"""Client webhooks: subscriptions, a durable outbox, signed deliveries with retries."""
