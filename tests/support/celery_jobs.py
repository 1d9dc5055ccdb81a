"""Test-only jobs, registered in the Celery workers that tests/test_celery.py
starts with OCOP_EXTRA_JOB_MODULES=tests.support.celery_jobs (see
tests/support/celery_probe.py)."""
from background.jobs import job
from tests.support.celery_probe import probe, probe_tick

job("probe", every_seconds=3600, description="test only: claim pending probe items")(probe)
job("probe_tick", every_seconds=1, description="test only: log that beat sent it")(probe_tick)
