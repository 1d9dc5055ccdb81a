"""Service-task handlers. The engine reaches them only through `registry`."""
