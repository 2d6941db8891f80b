"""Webhooks: a tenant's endpoints get the events of its runs, signed (Standard Webhooks), from
a durable outbox written with each event, delivered by the workers with retries."""
