"""RQ jobs of the scheduler. The worker runs them: `rq worker --with-scheduler scheduler`."""

QUEUE_NAME = "scheduler"
