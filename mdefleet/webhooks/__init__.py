"""Outgoing webhooks: subscriptions, signed deliveries from Celery with retries, and their log."""
