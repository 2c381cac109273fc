"""The HTTP edge: Slack's endpoint, health, metrics and webhooks on one aiohttp app."""
