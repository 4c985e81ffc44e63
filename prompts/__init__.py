"""Prompt templates (data, not code): installed as the package `core.prompts`, read by
`core.llm.templates`."""
