"""The demo data `ocop init` seeds for newcomers, and `ocop simulate`,
which drives many products through the real engine."""
