"""Submitting music tasks: validation beyond the schema, `auto` routing, the option plan, the
hold, and the queued task (beatra.tasks.service does the reserve + enqueue).

`auto` routing (first servable model of the preferred family, else of the other family):
  model_options for exactly one family     → that family only (the options were written for it)
  reference audio + instrumental           → suno (MiniMax covers cannot be instrumental)
  reference audio                          → minimax (its cover model keeps melody and structure)
  instrumental                             → suno
  lyrics                                   → minimax (follows section-tagged lyrics closely)
  otherwise (a description)                → suno
The task gets an `auto_routed` warning naming the model and the reason.
"""

from __future__ import annotations

from typing import Any

from beatra.catalog.model import Model
from beatra.catalog.registry import NOT_OFFERED, current_catalog, model_unavailable, servable
from beatra.errors import invalid
from beatra.media_inputs import resolve_media_input
from beatra.music import options, pricing
from beatra.music.options import FAMILY_OF_KIND, MINIMAX, SUNO, MusicPlan
from beatra.storage.models import Artifact
from beatra.tasks import service as tasks
from beatra.tasks.models import Task
from beatra.tasks.pricing import PriceTable, estimate

TEXT_TO_MUSIC = "music.text_to_music"
REFERENCE_AUDIO_TO_MUSIC = "music.reference_audio_to_music"
AUTO = "auto"
_INPUT_KEYS = ("model", "prompt", "lyrics", "instrumental", "title", "model_options")
# Reference audio length each family accepts (seconds); catalog limits may narrow it
# (`limits.reference_min_seconds`, `limits.reference_max_seconds`).
REFERENCE_SECONDS = {MINIMAX: (6, 360), SUNO: (1, 480)}


def family_of(model: Model) -> str | None:
    return FAMILY_OF_KIND.get(model.routes[0].provider.kind) if model.routes else None


def _preference(request: dict[str, Any], cover: bool) -> tuple[list[str], str]:
    given = [f for f in options.FAMILIES if (request.get("model_options") or {}).get(f)]
    if len(given) == 1:
        return given, f"model_options.{given[0]} was given"
    instrumental = bool(request.get("instrumental"))
    if cover and instrumental:
        return [SUNO], "an instrumental cover"
    if cover:
        return [MINIMAX, SUNO], "reference audio"
    if instrumental:
        return [SUNO, MINIMAX], "an instrumental"
    if options.clean_lyrics(request) is not None:
        return [MINIMAX, SUNO], "lyrics"
    return [SUNO, MINIMAX], "a description"


def choose_model(capability: str, request: dict[str, Any],
                 cover: bool) -> tuple[Model, list[dict[str, Any]]]:
    catalog = current_catalog()
    requested = request["model"]
    if requested != AUTO:
        model = catalog.model(requested)
        if model is None or not model.has(capability) or family_of(model) is None:
            raise model_unavailable(None, name=requested, message=NOT_OFFERED)
        if not servable(model):
            raise model_unavailable(model, with_retry_after=False)
        return model, []
    families, reason = _preference(request, cover)
    candidates = [m for f in families for m in catalog.models_for(capability)
                  if family_of(m) == f]
    ready = [m for m in candidates if servable(m)]
    if not ready:
        raise model_unavailable(None, message="No music model can serve this request right now.",
                                among=candidates, with_retry_after=False)
    model = ready[0]
    return model, [options.warning("auto_routed", f"model 'auto' was routed to {model.id} "
                                   f"(for {reason}).", "model")]


def _plan(model: Model, request: dict[str, Any], cover: bool,
          warnings: list[dict[str, Any]]) -> tuple[MusicPlan, list[dict[str, Any]]]:
    family = family_of(model)
    request = dict(request)
    if request["model"] == AUTO:
        # Auto with both families' options: the routed family's apply, the other's are dropped.
        given = dict(request.get("model_options") or {})
        for other in options.FAMILIES:
            if other != family and given.get(other) is not None:
                given[other] = None
                warnings.append(options.warning(
                    "option_ignored", f"model_options.{other} does not apply to {model.id}.",
                    f"model_options.{other}"))
        request["model_options"] = given
    if family == MINIMAX:
        plan, clamped = options.plan_minimax(request, cover)
    else:
        plan, clamped = options.plan_suno(request, cover, model.routes[0].upstream_model)
    return plan, warnings + clamped


def _reference(account_id: str, spec: dict[str, Any], model: Model,
               family: str) -> dict[str, Any]:
    artifact: Artifact = resolve_media_input(account_id, spec, kind="audio",
                                             param="/reference_audio", purpose="reference_audio")
    field = {"url": "url", "data_uri": "data", "artifact": "artifact_id"}[spec["type"]]
    low, high = REFERENCE_SECONDS[family]
    low = int(model.limits.get("reference_min_seconds", low))
    high = int(model.limits.get("reference_max_seconds", high))
    seconds = (artifact.duration_ms or 0) / 1000
    if not seconds:
        raise invalid("The reference audio has no readable duration.",
                      f"/reference_audio/{field}")
    if not low <= seconds <= high:
        raise invalid(f"The reference audio is {seconds:.1f} s long; {model.id} takes "
                      f"{low}-{high} s.", f"/reference_audio/{field}")
    ref: dict[str, Any] = {"type": "artifact", "artifact_id": artifact.id,
                           "source": spec["type"], "mime_type": artifact.mime_type,
                           "duration_ms": artifact.duration_ms}
    if spec["type"] == "url":
        ref["url"] = spec["url"]
    return ref


def _submit(account_id: str, key_id: str | None, capability: str,
            request: dict[str, Any]) -> Task:
    cover = capability == REFERENCE_AUDIO_TO_MUSIC
    options.check_common(request)
    options.check_metadata(request.get("metadata"))
    if request["model"] != AUTO:
        model = current_catalog().model(request["model"])
        family = family_of(model) if model is not None else None
        if family is not None:  # a wrong family's options are a 422 before anything else
            options.family_options(request, family)
    model, warnings = choose_model(capability, request, cover)
    plan, warnings = _plan(model, request, cover, warnings)
    task_input = {k: request.get(k) for k in _INPUT_KEYS}
    if cover:
        task_input["reference_audio"] = _reference(account_id, request["reference_audio"],
                                                   model, plan.family)
    prices = PriceTable.of(model, current_catalog().credits_per_usd)
    hold = estimate(pricing.hold_meters(plan, model), prices)
    return tasks.submit(
        account_id=account_id, key_id=key_id, capability=capability,
        requested_model=request["model"], resolved_model=model.id, task_input=task_input,
        hold=hold, prices=prices, warnings=warnings, metadata=request.get("metadata") or None,
        state={"plan": plan.to_state()},
    )


def submit_text_to_music(account_id: str, request: dict[str, Any], *,
                         key_id: str | None) -> Task:
    return _submit(account_id, key_id, TEXT_TO_MUSIC, request)


def submit_reference_audio_to_music(account_id: str, request: dict[str, Any], *,
                                    key_id: str | None) -> Task:
    return _submit(account_id, key_id, REFERENCE_AUDIO_TO_MUSIC, request)

