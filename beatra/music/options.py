"""Our music request → what each upstream family is asked for, checked at submission.

Everything that can be refused is refused here, before any credits are held (422 with a JSON
Pointer `param`); what can be adjusted harmlessly becomes an `option_clamped` warning.

Shared rules:
  lyrics with instrumental=true → 422 /lyrics; blank lyrics count as absent.
  model_options: only the key of the model's family (minimax | suno) → else 422.

MiniMax (music-2.6): prompt ≤ 2000, lyrics ≤ 3500 characters (422 beyond). No lyrics and not
  instrumental → `lyrics_optimizer` (MiniMax writes lyrics from the prompt). model_options.minimax:
  audio_setting {sample_rate 16000|24000|32000|44100, bitrate 32000|64000|128000|256000,
  format mp3|wav}, lyrics_optimizer (bool). Reference audio uses the cover model, which cannot
  make instrumentals (422 /instrumental). The title is only used to label the output.

Suno (sunoapi.org): custom mode when lyrics are given or instrumental (style = prompt unless
  model_options.suno.style; title = the given one, else derived from the prompt); description
  mode otherwise (prompt ≤ 500, 400 for covers; a given title then only labels the output,
  since custom mode without lyrics would sing the description). Limits by version (V5_5: lyrics
  5000, style 1000, title 100): lyrics/style beyond → 422, a title beyond → clamped with a
  warning. model_options.suno: style, negative_tags, vocal_gender (m|f), style_weight,
  weirdness_constraint, audio_weight (0..1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from beatra.errors import invalid
from beatra.providers import suno_api

MINIMAX = "minimax"
SUNO = "suno"
FAMILIES = (MINIMAX, SUNO)
# Provider kind (catalog) → model family (model_options key).
FAMILY_OF_KIND = {"minimax": MINIMAX, "sunoapi": SUNO}

MINIMAX_PROMPT_MAX = 2000
MINIMAX_LYRICS_MAX = 3500
SAMPLE_RATES = (16000, 24000, 32000, 44100)
BITRATES = (32000, 64000, 128000, 256000)
FORMATS = ("mp3", "wav")  # pcm has no header: nothing could play or probe it
DEFAULT_AUDIO_SETTING = {"sample_rate": 44100, "bitrate": 256000, "format": "mp3"}
DERIVED_TITLE_MAX = 80

_SUNO_OPTIONS = {"style": "style", "negative_tags": "negativeTags",
                 "vocal_gender": "vocalGender", "style_weight": "styleWeight",
                 "weirdness_constraint": "weirdnessConstraint", "audio_weight": "audioWeight"}
_MINIMAX_OPTIONS = ("audio_setting", "lyrics_optimizer")


def warning(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "field": field}


@dataclass(frozen=True)
class MusicPlan:
    """What the upstream call asks for; stored in the task state at submission."""

    family: str
    prompt: str
    lyrics: str | None
    instrumental: bool
    title: str | None  # the caller's or the derived one (labels the output)
    cover: bool
    # MiniMax
    lyrics_optimizer: bool = False
    audio_setting: dict[str, Any] = field(default_factory=dict)
    # Suno
    custom_mode: bool = False
    style: str | None = None
    suno_extra: dict[str, Any] = field(default_factory=dict)

    @property
    def songs(self) -> int:
        return 2 if self.family == SUNO else 1  # every sunoapi request makes two clips

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> MusicPlan:
        return cls(**data)


def clean_lyrics(request: dict[str, Any]) -> str | None:
    lyrics = request.get("lyrics")
    return lyrics if isinstance(lyrics, str) and lyrics.strip() else None


def check_common(request: dict[str, Any]) -> None:
    if not request["prompt"].strip():
        raise invalid("prompt must contain some text.", "/prompt")
    if request.get("instrumental") and clean_lyrics(request) is not None:
        raise invalid("lyrics must be omitted when instrumental is true.", "/lyrics")


def family_options(request: dict[str, Any], family: str) -> dict[str, Any]:
    """The model_options for `family`; 422 if another family's are given."""
    options = request.get("model_options") or {}
    for other in FAMILIES:
        if other != family and options.get(other) is not None:
            raise invalid(f"model_options.{other} does not apply to a {family} model; use "
                          f"model_options.{family}.", f"/model_options/{other}")
    return dict(options.get(family) or {})


def derive_title(prompt: str, limit: int = DERIVED_TITLE_MAX) -> str:
    """A short title from the prompt: its first line, cut at a word boundary."""
    line = " ".join(prompt.split())
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0]
    return cut or line[:limit]


def _unknown(options: dict[str, Any], allowed: Any, family: str) -> None:
    for key in options:
        if key not in allowed:
            raise invalid(f"Unknown option '{key}' for {family}; allowed: "
                          f"{', '.join(allowed)}.", f"/model_options/{family}/{key}")


def plan_minimax(request: dict[str, Any], cover: bool) -> tuple[MusicPlan, list[dict[str, Any]]]:
    options = family_options(request, MINIMAX)
    _unknown(options, _MINIMAX_OPTIONS, MINIMAX)
    prompt, lyrics = request["prompt"], clean_lyrics(request)
    instrumental = bool(request.get("instrumental"))
    if len(prompt) > MINIMAX_PROMPT_MAX:
        raise invalid(f"prompt is {len(prompt)} characters; MiniMax takes at most "
                      f"{MINIMAX_PROMPT_MAX}.", "/prompt")
    if lyrics is not None and len(lyrics) > MINIMAX_LYRICS_MAX:
        raise invalid(f"lyrics are {len(lyrics)} characters; MiniMax takes at most "
                      f"{MINIMAX_LYRICS_MAX}.", "/lyrics")
    if cover and instrumental:
        raise invalid("MiniMax covers keep the reference's vocals and cannot be instrumental; "
                      "use suno-5.5 (or auto) for an instrumental cover.", "/instrumental")
    optimizer = options.get("lyrics_optimizer", lyrics is None and not instrumental)
    if not isinstance(optimizer, bool):
        raise invalid("lyrics_optimizer must be a boolean.",
                      "/model_options/minimax/lyrics_optimizer")
    if not cover and not instrumental and lyrics is None and not optimizer:
        raise invalid("Without lyrics MiniMax needs lyrics_optimizer (or instrumental=true).",
                      "/model_options/minimax/lyrics_optimizer")
    setting = dict(DEFAULT_AUDIO_SETTING)
    given = options.get("audio_setting") or {}
    base = "/model_options/minimax/audio_setting"
    if not isinstance(given, dict):
        raise invalid("audio_setting must be an object.", base)
    for key, allowed in (("sample_rate", SAMPLE_RATES), ("bitrate", BITRATES),
                         ("format", FORMATS)):
        if key in given:
            if given[key] not in allowed or isinstance(given[key], bool):
                raise invalid(f"{key} must be one of {', '.join(map(str, allowed))}.",
                              f"{base}/{key}")
            setting[key] = given[key]
    _unknown(given, ("sample_rate", "bitrate", "format"), f"{MINIMAX}/audio_setting")
    return MusicPlan(family=MINIMAX, prompt=prompt, lyrics=lyrics, instrumental=instrumental,
                     title=request.get("title") or None, cover=cover,
                     lyrics_optimizer=optimizer and not cover, audio_setting=setting), []


def _weight(options: dict[str, Any], key: str) -> None:
    value = options.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not 0 <= value <= 1):
        raise invalid(f"{key} must be a number from 0 to 1.", f"/model_options/suno/{key}")


def plan_suno(request: dict[str, Any], cover: bool,
              version: str) -> tuple[MusicPlan, list[dict[str, Any]]]:
    options = family_options(request, SUNO)
    _unknown(options, _SUNO_OPTIONS, SUNO)
    for key in ("style", "negative_tags"):
        if key in options and not isinstance(options[key], str):
            raise invalid(f"{key} must be a string.", f"/model_options/suno/{key}")
    if options.get("vocal_gender") not in (None, "m", "f"):
        raise invalid("vocal_gender must be 'm' or 'f'.", "/model_options/suno/vocal_gender")
    for key in ("style_weight", "weirdness_constraint", "audio_weight"):
        _weight(options, key)
    warnings: list[dict[str, Any]] = []
    prompt, lyrics = request["prompt"], clean_lyrics(request)
    instrumental = bool(request.get("instrumental"))
    title = request.get("title") or None
    lyrics_max, style_max, title_max = suno_api.custom_limits(version)
    extra = {_SUNO_OPTIONS[k]: v for k, v in options.items() if k != "style" and v is not None}
    # Custom mode needs lyrics unless instrumental; without either, Suno writes the song from
    # a description (a caller's title then only labels the output).
    custom = lyrics is not None or instrumental
    style: str | None = None
    if custom:
        style = options.get("style") or prompt
        style_param = "/model_options/suno/style" if options.get("style") else "/prompt"
        if len(style) > style_max:
            raise invalid(f"The style is {len(style)} characters; Suno {version} takes at most "
                          f"{style_max}.", style_param)
        if lyrics is not None and len(lyrics) > lyrics_max:
            raise invalid(f"lyrics are {len(lyrics)} characters; Suno {version} takes at most "
                          f"{lyrics_max}.", "/lyrics")
        if title is None:
            title = derive_title(prompt, min(DERIVED_TITLE_MAX, title_max))
        elif len(title) > title_max:
            title = title[:title_max].rstrip()
            warnings.append(warning("option_clamped", f"Suno {version} titles are at most "
                                    f"{title_max} characters; the title was shortened.",
                                    "title"))
    else:
        limit = suno_api.COVER_DESCRIPTION_LIMIT if cover else suno_api.DESCRIPTION_LIMIT
        if len(prompt) > limit:
            raise invalid(f"Without lyrics Suno takes a description of at most {limit} "
                          f"characters (this prompt is {len(prompt)}); add lyrics or set "
                          "instrumental to use custom mode.", "/prompt")
        if options.get("style"):
            warnings.append(warning("option_ignored", "Suno uses a style only with lyrics or "
                                    "instrumental=true; it was not sent.", "model_options"))
    return MusicPlan(family=SUNO, prompt=prompt, lyrics=lyrics, instrumental=instrumental,
                     title=title, cover=cover, custom_mode=custom, style=style,
                     suno_extra=extra), warnings


def check_metadata(metadata: dict[str, Any] | None, *, max_keys: int = 16, key_max: int = 64,
                   value_max: int = 512) -> None:
    """Caller metadata: at most 16 keys, keys ≤ 64 and values ≤ 512 characters."""
    if not metadata:
        return
    if len(metadata) > max_keys:
        raise invalid(f"metadata has {len(metadata)} keys; at most {max_keys}.", "/metadata")
    for key, value in metadata.items():
        pointer = "/metadata/" + key.replace("~", "~0").replace("/", "~1")
        if not key or len(key) > key_max:
            raise invalid(f"metadata keys must be 1-{key_max} characters.", pointer)
        if len(value) > value_max:
            raise invalid(f"metadata values must be at most {value_max} characters.", pointer)
