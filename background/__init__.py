"""The work nobody clicks for: the job registry and its schedulers (the
embedded worker, Celery), firing timers, retrying failed service tasks,
delivering the outbox (in-app and e-mail), daily digests, checkpoints."""
