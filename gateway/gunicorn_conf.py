"""gunicorn settings of the gateway: the services' (servicekit/gunicorn_conf.py) with the
gateway's event-loop worker, and its internal metrics listener bound beside the public one.

    gunicorn -c gateway/gunicorn_conf.py gateway.app:create_app

The public address is GUNICORN_BIND; /metrics is served only on GATEWAY_METRICS_BIND
(when it is set), an address the load balancer does not expose.
"""

from __future__ import annotations

import os

from servicekit.gunicorn_conf import *  # noqa: F403 - the shared settings, then the gateway's
from servicekit.gunicorn_conf import bind as public_bind

worker_class = "gateway.worker.GatewayWorker"
_metrics_bind = os.environ.get("GATEWAY_METRICS_BIND")
bind = [public_bind, _metrics_bind] if _metrics_bind else [public_bind]  # type: ignore[assignment]
