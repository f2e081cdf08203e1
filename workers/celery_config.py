"""Celery configuration, read lazily by the app from the router's settings (see workers.celery_app)."""

from __future__ import annotations

from config.settings import get_settings
from workers.broker import use_failover_safe_sentinel
from workers.store.connections import broker_for, is_sentinel_url, parse_sentinel_url, redis_url

_settings = get_settings()

broker_url, _options = broker_for(_settings.celery_broker_url or redis_url(_settings.redis_url))
if broker_url.startswith("sentinel://") and "master_name" not in _options:
    # CELERY_BROKER_URL names sentinels: the service is CELERY_BROKER_MASTER_NAME, else REDIS_URL's service.
    store_url = redis_url(_settings.redis_url)
    _options["master_name"] = _settings.celery_broker_master_name or (
        parse_sentinel_url(store_url).service if is_sentinel_url(store_url) else "mymaster")
if broker_url.startswith("sentinel://"):
    use_failover_safe_sentinel()
broker_connection_retry_on_startup = True
broker_transport_options = {"visibility_timeout": _settings.celery_visibility_timeout, **_options}
if broker_url.startswith(("amqp://", "amqps://", "pyamqp://")):
    # RabbitMQ: replicated quorum queues and publisher confirms, so an acknowledged publish is not lost.
    task_default_queue_type = "quorum"
    broker_transport_options["confirm_publish"] = True
task_ignore_result = True
result_backend = None
task_serializer = "json"
accept_content = ["json"]
task_acks_late = True
task_reject_on_worker_lost = True
task_acks_on_failure_or_timeout = True
# Each process keeps a few messages at hand (acknowledged late, so a crash returns them to the queue, and the leads'
# leases bring them back in any case): a finished task does not wait for the ack and the next fetch round trip.
worker_prefetch_multiplier = 4
worker_send_task_events = True
task_send_sent_event = True
worker_hijack_root_logger = False
worker_soft_shutdown_timeout = 15.0
worker_enable_soft_shutdown_on_idle = True
task_default_queue = _settings.celery_queue
task_time_limit = 600
task_soft_time_limit = 300
# Publishing fails fast when the broker is down: the API answers 503 and the lead's lease re-queues it later.
broker_connection_timeout = 2.0
task_publish_retry_policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
