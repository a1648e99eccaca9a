from __future__ import annotations

from tests.conftest import ApiAccount


def test_models_lists_only_servable_models(client, account: ApiAccount):
    body = client.get("/v1/models", headers=account.headers).get_json()
    assert body["object"] == "list"
    assert body["data"][0] == {"id": "test-chat", "object": "model", "created": 1700000000,
                               "owned_by": "beatra"}
    ids = [m["id"] for m in body["data"]]
    assert ids == ["test-chat", "test-reasoner", "test-cheap"]  # not keyless-chat: no key


def test_catalog_models_same_as_models(client, account: ApiAccount):
    a = client.get("/v1/models", headers=account.headers).get_json()
    b = client.get("/v1/catalog/models", headers=account.headers).get_json()
    assert a == b


def test_keyed_provider_becomes_servable(make_app, monkeypatch):
    monkeypatch.setenv("BEATRA_TEST_UNSET_KEY", "now-set")
    app = make_app()
    from beatra.accounts import service

    with app.app_context():
        acct = service.create_account("x")
        _, secret = service.create_key(acct.id)
    body = app.test_client().get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert "keyless-chat" in [m["id"] for m in body.get_json()["data"]]


def test_capabilities(client, account: ApiAccount):
    body = client.get("/v1/catalog/capabilities", headers=account.headers).get_json()
    assert body["object"] == "list"
    chat = next(c for c in body["data"] if c["capability"] == "chat.completions")
    assert chat == {
        "capability": "chat.completions",
        "endpoint": "/v1/chat/completions",
        "input_modality": "text",
        "output_modality": "text",
        "execution_mode": "stream",
        "description": chat["description"],
        "model_count": 3,
    }
