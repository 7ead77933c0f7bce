from django.apps import AppConfig


class MatchingConfig(AppConfig):
    name = "matching"
    verbose_name = "Identificação (CLIP + pgvector)"

    def ready(self) -> None:
        # The healthcheck reports which model the workers run, read from the database: web
        # processes never load the model themselves.
        from raiox.health import CHECKS

        CHECKS.setdefault("model", check_model)


def check_model() -> dict:
    from matching.selectors import model_state

    state = model_state()
    if state is None:
        # No worker has started yet: informative, not a failure of this web process.
        return {"ok": True, "model_id": None, "workers_alive": 0}
    return {
        "ok": True,
        "model_id": state.model_id,
        "untrained": state.untrained,
        "device": state.device,
        "workers_alive": state.workers_alive,
        "last_seen": state.last_seen.isoformat(),
    }
