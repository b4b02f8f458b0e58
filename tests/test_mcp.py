"""The MCP tools through the official SDK's own client: over stdio (`python -m app.mcp`, a real child
process) and over streamable HTTP at /mcp on a real server, behind its Host allow-list and API key."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {"search_notes", "ask_notes", "get_note"}


def stdio(index_dir: Path) -> StdioServerParameters:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NOTES_INDEX_DIR": str(index_dir)}
    return StdioServerParameters(command=sys.executable, args=["-m", "app.mcp"], env=env, cwd=str(ROOT))


def text_of(result) -> str:
    return " ".join(c.text for c in result.content if c.type == "text")


async def check_tools(client: Client) -> None:
    """Each tool on the test corpus, with the answers the HTTP API gives."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert "untrusted" in tool.description and tool.input_schema["type"] == "object"
    search = tools["search_notes"].input_schema
    assert search["required"] == ["query"] and search["properties"]["k"]["maximum"] == 50
    assert tools["ask_notes"].input_schema["required"] == ["question"]

    found = await client.call_tool("search_notes", {"query": "梯度检查点", "k": 3})
    assert not found.is_error
    results = found.structured_content["results"]
    assert len(results) == 3 and results[0]["post_id"] == "gradient-checkpointing-7d01ea"

    answered = await client.call_tool("ask_notes", {"question": "为什么需要梯度检查点?"})
    body = answered.structured_content
    assert not answered.is_error and body["found"] is True and "[1]" in body["answer"]
    assert body["citations"][0]["post_id"] == "gradient-checkpointing-7d01ea"
    refused = (await client.call_tool("ask_notes", {"question": "红烧肉怎么做?"})).structured_content
    assert refused["found"] is False and refused["citations"] == []

    note = await client.call_tool("get_note", {"post_id": "injection-note"})
    assert not note.is_error and note.structured_content["post_id"] == "injection-note"
    assert note.structured_content["text"]  # the note's text, instructions and all, as a string field


async def check_malformed_calls(client: Client) -> None:
    """Bad arguments, an unknown post or tool: a tool error the model can read, and the server goes on."""
    bad = {
        ("search_notes", "k"): {"query": "梯度", "k": "many"},
        ("search_notes", "query"): {"k": 3},
        ("search_notes", "since"): {"query": "梯度", "since": "2026-13-01"},
        ("search_notes", "after until"): {"query": "梯度", "since": "2026-02-01", "until": "2026-01-01"},
        ("ask_notes", "top_k"): {"question": "DDP", "top_k": 99},
        ("ask_notes", "question"): {"question": " \x00 "},
        ("get_note", "No post with id"): {"post_id": "../../etc/passwd"},
        ("get_note", "post_id"): {"post_id": ["a", "b"]},
    }
    for (tool, word), arguments in bad.items():
        result = await client.call_tool(tool, arguments)
        assert result.is_error and word in text_of(result), (tool, arguments, text_of(result))
    unknown = await client.call_tool("drop_all_notes", {})
    assert unknown.is_error and "drop_all_notes" in text_of(unknown)
    assert not (await client.call_tool("get_note", {"post_id": "xss-note"})).is_error  # still serving


async def over_stdio(index_dir: Path) -> None:
    async with Client(stdio(index_dir)) as client:
        await check_tools(client)
        await check_malformed_calls(client)


def test_the_sdk_client_calls_each_tool_over_stdio(built) -> None:
    asyncio.run(over_stdio(built.index_dir))


async def over_http(url: str, key: str) -> None:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            await check_tools(client)
            await check_malformed_calls(client)


def test_mcp_over_http_sits_behind_the_host_list_and_the_key(built, server_factory) -> None:
    server = server_factory(built.index_dir, api_key="k3y")
    asyncio.run(over_http(f"{server.url}/mcp", "k3y"))
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    r = httpx.post(f"{server.url}/mcp", json=ping, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = httpx.post(f"{server.url}/mcp", json=ping, headers={**headers, "Authorization": "Bearer k3y", "Host": "evil.example"})
    assert r.status_code == 400 and r.text == "Invalid host header"
    r = httpx.post(f"{server.url}/mcp", content=b"x" * 70_000, headers={**headers, "Authorization": "Bearer k3y"})
    assert r.status_code == 413
    metrics = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer k3y"}).text
    assert 'route="/mcp"' in metrics
