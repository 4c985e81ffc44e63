"""The web desk for support agents and the dashboard for the shop (`concierge web`)."""
