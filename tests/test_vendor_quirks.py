"""Vendor quirks (router_core/providers/quirks.py) against the wire-faithful fake OpenAI
cloud, which refuses what OpenAI's reasoning models refuse."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.fakes.fake_openai_cloud import API_KEY
from tests.support.clouds import cloud_settings, fake_openai_cloud
from tests.support.servers import run_hybridge

BODY = {"model": "cloud", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50, "temperature": 0.2}


@pytest.mark.parametrize("model", ["gpt-5-mini", "o3"])
def test_openai_reasoning_models_get_max_completion_tokens(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    with fake_openai_cloud() as (fake, url):
        # Without the quirk step the vendor refuses the body as OpenCode sends it.
        direct = httpx.post(
            f"{url}/v1/chat/completions", json={**BODY, "model": model}, headers={"authorization": f"Bearer {API_KEY}"}
        )
        assert direct.status_code == 400 and direct.json()["error"]["code"] == "unsupported_parameter"
        with run_hybridge(cloud_settings("openai", {"base_url": f"{url}/v1"}, f"openai/{model}")) as service:
            client = openai.OpenAI(base_url=service.status().base_url, api_key="unused", max_retries=0)
            answer = client.chat.completions.create(**BODY)  # type: ignore[call-overload]
            streamed = list(client.chat.completions.create(**BODY, stream=True))  # type: ignore[call-overload]
        assert answer.choices[0].message.content and streamed
        for _, sent in fake.state.requests[1:]:
            assert sent["max_completion_tokens"] == 50 and "max_tokens" not in sent and "temperature" not in sent


def test_other_models_and_vendors_keep_max_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", API_KEY)
    with fake_openai_cloud() as (fake, url):
        settings = cloud_settings("openrouter", {"preset": "openrouter", "base_url": f"{url}/v1"}, "openrouter/gpt-4.1")
        with run_hybridge(settings) as service:
            client = openai.OpenAI(base_url=service.status().base_url, api_key="unused", max_retries=0)
            client.chat.completions.create(**BODY)  # type: ignore[call-overload]
        sent = fake.state.requests[0][1]
        assert sent["max_tokens"] == 50 and sent["temperature"] == 0.2
