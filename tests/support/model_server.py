"""The offline model server's client side: the real `openai` client, as an agent holds it."""

from __future__ import annotations

from typing import Any

import openai

from local_emulator.model_server.server import ModelServer

MODEL = "gpt-4o-mini"


def client(server: ModelServer, agent: str | None = "coder", retries: int = 0) -> openai.OpenAI:
    headers = {"X-Agentlobby-Agent": agent} if agent else {}
    return openai.OpenAI(
        base_url=server.url, api_key="test", default_headers=headers, max_retries=retries
    )


def ask(model: openai.OpenAI, *texts: str) -> str:
    messages: Any = [{"role": "user", "content": text} for text in texts]
    answer = model.chat.completions.create(model=MODEL, messages=messages)
    return answer.choices[0].message.content or ""
