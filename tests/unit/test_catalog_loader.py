from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from beatra import create_app
from beatra.catalog.loader import CatalogError, load_catalog
from beatra.config import PROJECT_DIR

GOOD = """
credits_per_usd: "100"
providers:
  p: {kind: openai, base_url: "${BASE}/v1", api_key_env: P_KEY}
models:
  - id: m1
    capabilities: [chat.completions]
    routes: [{provider: p, upstream_model: up-1}]
    pricing: {input_token: "0.000015", output_token: "0.00006"}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def test_loads_and_interpolates(tmp_path):
    cat = load_catalog(write(tmp_path, GOOD), {"BASE": "http://x.test", "P_KEY": "k"})
    assert cat.credits_per_usd == Decimal(100)
    model = cat.model("m1")
    assert model.routes[0].provider.base_url == "http://x.test/v1"
    assert model.routes[0].provider.api_key == "k"
    assert model.pricing["input_token"] == Decimal("0.000015")
    assert model.created > 0


def test_missing_key_env_means_not_configured(tmp_path):
    cat = load_catalog(write(tmp_path, GOOD), {"BASE": "http://x.test"})
    assert not cat.providers["p"].configured


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.replace("${BASE}", "${NOPE}"), "environment variable NOPE is not set"),
        (lambda t: t.replace("provider: p,", "provider: q,"), "unknown provider 'q'"),
        (lambda t: t.replace("chat.completions", "video.magic"), "models[0].capabilities[0]"),
        (lambda t: t.replace('"0.000015"', "0.000015"), "quoted strings"),
        (lambda t: t.replace('"0.000015"', '"-1"'), "must not be negative"),
        (lambda t: t.replace('"0.000015"', '"abc"'), "not a decimal"),
        (lambda t: t.replace("kind: openai", "kind: carrier-pigeon"), "providers"),
        (lambda t: t.replace('credits_per_usd: "100"', 'credits_per_usd: "0"'), "positive"),
        (lambda t: t + t[t.index("  - id"):], "duplicate model id"),
        (lambda t: t.replace("models:", "models: [").replace("id: m1", "id: m1"), "YAML"),
        (lambda t: "just a string", "mapping"),
    ],
)
def test_broken_catalogs_are_rejected_clearly(tmp_path, mutate, message):
    with pytest.raises(CatalogError) as info:
        load_catalog(write(tmp_path, mutate(GOOD)), {"BASE": "http://x.test"})
    assert message in str(info.value)
    assert "\n" not in str(info.value).strip() or "YAML" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(CatalogError, match="cannot read catalog"):
        load_catalog(tmp_path / "absent.yaml", {})


def test_broken_catalog_stops_app_start(tmp_path):
    with pytest.raises(CatalogError):
        create_app({"catalog_path": str(write(tmp_path, "models: 3")),
                    "database_url": f"sqlite:///{tmp_path / 'x.db'}"})


@pytest.mark.parametrize("name", ["sandbox.yaml", "production.example.yaml"])
def test_shipped_catalogs_load(name):
    env = {"BEATRA_SANDBOX_URL": "http://127.0.0.1:1"}
    cat = load_catalog(PROJECT_DIR / "catalogs" / name, env)
    assert cat.models


def test_sandbox_catalog_has_contract_chat_models():
    cat = load_catalog(PROJECT_DIR / "catalogs" / "sandbox.yaml",
                       {"BEATRA_SANDBOX_URL": "http://127.0.0.1:1"})
    for model_id in ("gpt-4o-mini", "deepseek-reasoner", "glm-z1-air"):
        assert cat.model(model_id).has("chat.completions")
