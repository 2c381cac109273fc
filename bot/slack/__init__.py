"""The Slack edge: Bolt listeners that ack, parse, call one use case and render."""
