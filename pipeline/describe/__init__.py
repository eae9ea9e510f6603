"""Stage describe: class descriptions from an LLM (``llm/``), a file or templates, then cleaned."""
