"""Every operation's route, generated from the operations declared in
`engram_core::api::operations`; do not edit. Regenerate:
`UPDATE_SNAPSHOTS=1 cargo test -p engram-core python`."""

from __future__ import annotations

import urllib.parse

__all__ = ["ROUTES", "route"]

#: Every operation: its HTTP method, its path under ``/api`` and the name
#: of the key in it (None: none).
ROUTES: dict[str, tuple[str, str, str | None]] = {
    "status": ("GET", "/status", None),
    "list_backups": ("GET", "/backups", None),
    "create_backup": ("POST", "/backups", None),
    "get_backup": ("GET", "/backups/{id}", "id"),
    "compare_backups": ("GET", "/backups/{id}/compare", "id"),
    "metric_in_backups": ("GET", "/backups/metric", None),
    "find_fall": ("GET", "/backups/find", None),
    "bisect_fall": ("POST", "/backups/bisect", None),
    "drill_backup": ("POST", "/backups/{id}/drill", "id"),
    "backup_drills": ("GET", "/backups/{id}/drills", "id"),
    "delete_backup": ("DELETE", "/backups/{id}", "id"),
    "restore_backup": ("POST", "/backups/{id}/restore", "id"),
    "pin_backup": ("POST", "/backups/{id}/pin", "id"),
    "unpin_backup": ("POST", "/backups/{id}/unpin", "id"),
    "set_label": ("PUT", "/backups/{id}/label", "id"),
    "hold_backup": ("POST", "/backups/{id}/hold", "id"),
    "release_backup": ("DELETE", "/backups/{id}/hold", "id"),
    "timeline": ("GET", "/timeline", None),
    "storage": ("GET", "/storage", None),
    "verify": ("POST", "/verify", None),
    "retention": ("GET", "/retention", None),
    "learners": ("GET", "/learners", None),
    "attach_learner": ("POST", "/learners", None),
    "learner": ("GET", "/learners/{name}", "name"),
    "remove_learner": ("DELETE", "/learners/{name}", "name"),
    "set_learner_command": ("PUT", "/learners/{name}/command", "name"),
    "remove_learner_command": ("DELETE", "/learners/{name}/command", "name"),
    "report_learner_milestone": ("POST", "/learners/{name}/milestones", "name"),
    "set_learner_drill": ("PUT", "/learners/{name}/drill", "name"),
    "learner_drill": ("GET", "/learners/{name}/drill", "name"),
    "set_learner_milestone_rules": ("PUT", "/learners/{name}/milestone-rules", "name"),
    "set_learner_metric_info": ("PUT", "/learners/{name}/metric-info", "name"),
    "start_learner": ("POST", "/learners/{name}/start", "name"),
    "stop_learner": ("POST", "/learners/{name}/stop", "name"),
    "lease_learner_slot": ("POST", "/learners/{name}/lease", "name"),
    "save_leased_learner_state": ("POST", "/learners/{name}/state/leased", "name"),
    "log_learner_metrics": ("POST", "/learners/{name}/metrics", "name"),
    "settings": ("GET", "/settings", None),
    "patch_settings": ("PUT", "/settings", None),
    "settings_schema": ("GET", "/settings/schema", None),
    "metric_catalog": ("GET", "/metrics/catalog", None),
    "metric_series": ("GET", "/metrics/series", None),
    "replicas": ("GET", "/replicas", None),
    "add_replica": ("POST", "/replicas", None),
    "replica_key": ("GET", "/replica-key", None),
    "replica": ("GET", "/replicas/{name}", "name"),
    "remove_replica": ("DELETE", "/replicas/{name}", "name"),
    "verify_replica": ("POST", "/replicas/{name}/verify", "name"),
    "prune_replica": ("POST", "/replicas/{name}/prune", "name"),
    "replica_backups": ("GET", "/replicas/{name}/backups", "name"),
    "retrieve_backup": ("POST", "/replicas/{name}/retrieve", "name"),
    "fleet_status": ("GET", "/fleet", None),
    "fleet_join": ("POST", "/fleet", None),
    "fleet_leave": ("DELETE", "/fleet", None),
    "fleet_rename": ("PUT", "/fleet/name", None),
    "fleet_hosts": ("GET", "/fleet/hosts", None),
    "fleet_backups": ("GET", "/fleet/backups", None),
    "fleet_timeline": ("GET", "/fleet/timeline", None),
    "fleet_series": ("GET", "/fleet/series", None),
    "fleet_restore": ("POST", "/fleet/restore", None),
    "first_run": ("GET", "/first-run", None),
    "start_fresh": ("POST", "/first-run/fresh", None),
    "recover_here": ("POST", "/first-run/recover", None),
    "export_backup": ("GET", "/backups/{id}/export", "id"),
    "import_snapshot": ("POST", "/import", None),
    "read_learner_state": ("GET", "/learners/{name}/state", "name"),
    "save_learner_state": ("PUT", "/learners/{name}/state", "name"),
    "events": ("GET", "/events", None),
}


def route(op: str, key: str | int | None = None) -> tuple[str, str]:
    """The method and the path (with ``/api`` and the key put in) of `op`."""
    method, path, name = ROUTES[op]
    if name is not None:
        path = path.replace("{" + name + "}", urllib.parse.quote(str(key), safe=""))
    return method, "/api" + path
