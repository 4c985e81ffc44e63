"""`concierge bench load`: the load and fault harness (customers, faults, checks, stand-ins)."""
