"""The local understanding model: MiniLM features plus trained linear heads (torch lives here)."""
