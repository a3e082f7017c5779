"""Agent memory: the `Memory` stores (in-memory, postgres, http) and the built-in memory tools."""
