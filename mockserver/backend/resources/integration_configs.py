"""Integration configurations: links an entity (for notifications, a Notification) to a
destination (for notifications, a webhook).

m3ter answers ``GET /integrationconfigs/{id}`` and the by-entity lookup with an
integration *run*; the mock shows the configuration's latest delivery run there.
"""

from __future__ import annotations

from mockserver.domain.errors import MockError

from ..crud import Caller, CrudService, ResourceKind, equals, public_view

WRITABLE = ("entityType", "entityId", "destination", "destinationId", "name", "configData",
            "credentials", "integrationCredentialsId")


def prepare(backend, caller, body, existing):
    fields = {k: body[k] for k in WRITABLE if body.get(k) is not None}
    if body["destination"].lower() == "webhook" and body.get("destinationId"):
        if not backend.webhooks.exists(caller, body["destinationId"]):
            raise MockError.bad_request(f"destinationId: no webhook destination with id {body['destinationId']!r}")
    if body["entityType"].lower() == "notification" and body.get("entityId"):
        if not backend.notifications.exists(caller, body["entityId"]):
            raise MockError.bad_request(f"entityId: no notification with id {body['entityId']!r}")
    fields["enabled"] = existing["enabled"] if existing else True
    fields["authorized"] = True
    fields["triggerType"] = "EVENT"
    return fields


KIND = ResourceKind(
    collection="integrationconfigs",
    label="IntegrationConfiguration",
    prepare=prepare,
    filters={"destinationId": equals("destinationId")},
    unique_code=False,
)


def run_view(config: dict, last_run: dict | None) -> dict:
    shown = public_view(config)
    run = {
        "id": config["id"],
        "version": config["version"],
        "entityType": config["entityType"],
        "entityId": config.get("entityId") or config["id"],
        "destination": config["destination"],
        "status": "WAITING",  # a disabled configuration's is set last, over its last run's
        "dtCreated": shown["dtCreated"],
        "dtLastModified": shown["dtLastModified"],
        "createdBy": shown["createdBy"],
        "lastModifiedBy": shown["lastModifiedBy"],
    }
    if config.get("destinationId"):
        run["destinationId"] = config["destinationId"]
    if last_run:
        run.update(last_run)
    if not config["enabled"]:
        run["status"] = "DISABLED"
    return run


class IntegrationConfigService(CrudService):
    def enable(self, caller: Caller, config_id: str) -> dict:
        return self.modify(caller, config_id, {"enabled": True})

    def last_run(self, caller: Caller, config: dict) -> dict | None:
        """Run fields (status, times, url, error) of the configuration's latest delivery."""
        return self.backend.deliveries.last_run(caller.org_id, config["id"])

    def disable(self, caller: Caller, config_id: str) -> dict:
        """m3ter disables a configuration itself (e.g. after failures); the admin API uses this."""
        return self.modify(caller, config_id, {"enabled": False})

    def get_run(self, caller: Caller, config_id: str) -> dict:
        with self.backend.store.lock:
            config = self.find(caller, config_id)
            return run_view(config, self.last_run(caller, config))

    def get_for_entity(self, caller: Caller, entity_type: str, entity_id: str | None,
                       destination: str | None, destination_id: str | None) -> dict:
        with self.backend.store.lock:
            for config in self.backend.store.peek(caller.org_id, self.kind.collection).values():
                if (config["entityType"].lower() == entity_type.lower()
                        and (entity_id is None or config.get("entityId") == entity_id)
                        and (destination is None or config["destination"].lower() == destination.lower())
                        and (destination_id is None or config.get("destinationId") == destination_id)):
                    return run_view(config, self.last_run(caller, config))
        raise MockError.not_found(f"No integration configuration for entityType {entity_type!r} matches")
