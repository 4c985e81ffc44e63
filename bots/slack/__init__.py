"""Slack: customers in threads and DMs (`customers`), the support team's desk in a channel
(`desk`), both on one bolt app (`app`). Block Kit rendering and posting live in `render`.
Run it as a module: `python -m bots.slack` (or `concierge slack`)."""
