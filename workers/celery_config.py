"""Celery configuration, read lazily by the app from the router's settings (see workers.celery_app)."""

from __future__ import annotations

from config.settings import get_settings
from workers.store.connections import redis_url

_settings = get_settings()

broker_url = _settings.celery_broker_url or redis_url(_settings.redis_url)
broker_connection_retry_on_startup = True
broker_transport_options = {"visibility_timeout": _settings.celery_visibility_timeout}
task_ignore_result = True
result_backend = None
task_serializer = "json"
accept_content = ["json"]
task_acks_late = True
task_reject_on_worker_lost = True
task_acks_on_failure_or_timeout = True
worker_prefetch_multiplier = 1
worker_send_task_events = True
task_send_sent_event = True
worker_hijack_root_logger = False
worker_soft_shutdown_timeout = 15.0
worker_enable_soft_shutdown_on_idle = True
task_default_queue = "leads"
task_time_limit = 600
task_soft_time_limit = 300
# Publishing fails fast when the broker is down: the API answers 503 and the lead's lease re-queues it later.
broker_connection_timeout = 2.0
task_publish_retry_policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
