"""The web application and the `ocop` command line (the top of the import chain)."""
