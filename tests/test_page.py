"""The chat page (app/static/*) in headless Chromium against a real server on 127.0.0.1."""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Iterator

import httpx
import pytest

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "app" / "static"
DOCS = ROOT / "docs"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT = 15_000  # ms, for anything that waits on the server


def test_static_files_are_small() -> None:
    """Everything the chat page loads: its HTML, its style and its ES modules."""
    files = [STATIC / "index.html", STATIC / "style.css", *sorted((STATIC / "js").glob("*.js"))]
    total = sum(f.stat().st_size for f in files)
    # 50 KB until the 👍/👎 row (1.9 KB with its strings); moving the note page's styles to note.css paid
    # for half of it.
    assert total < 51 * 1024, f"the chat page weighs {total} bytes"


def _skip_reason() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"BROWSER TESTS SKIPPED: {CHROMIUM} not installed (make browser installs it)"
    if sync_playwright is None:
        return "BROWSER TESTS SKIPPED: playwright is not importable (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = _skip_reason()
    if reason:
        warnings.warn(reason)  # shows in the summary even without -rs
        pytest.skip(reason)
    expect.set_options(timeout=WAIT)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def problems() -> list[str]:
    """Dialogs (alert & co) and uncaught page errors seen by the test's pages; must stay empty."""
    return []


def new_page(browser: Browser, problems: list[str], width: int = 1280, height: int = 800) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN", color_scheme="light")
    context.set_default_timeout(WAIT)
    context.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    context.on("weberror", lambda e: problems.append(f"page error: {e.error}"))
    return context.new_page()


@pytest.fixture
def page(browser: Browser, problems: list[str]) -> Iterator[Page]:
    """A fresh context per test, so localStorage starts empty."""
    page = new_page(browser, problems)
    yield page
    page.context.close()
    assert not problems


def ask(page: Page, question: str):
    """Ask through the page; return the bot (or error) message that answers it."""
    before = page.locator("#messages .msg:not(.user)").count()
    q = page.locator("textarea#question")
    q.fill(question)
    q.press("Enter")
    answers = page.locator("#messages .msg.bot, #messages .msg.error")
    expect(answers).to_have_count(before + 1)
    return answers.last


def test_ask_shows_cited_answer_and_disables_input(page: Page, live_server) -> None:
    page.goto(live_server.url + "/")
    expect(page.locator("#status")).to_have_attribute("data-state", "online")
    q = page.locator("textarea#question")
    states = []

    def during_request(route) -> None:  # runs while /ask is in flight: deterministic, no timing
        states.append(q.is_disabled())
        route.continue_()

    page.route("**/ask", during_request)
    bot = ask(page, "为什么需要梯度检查点?")
    assert states == [True]
    expect(bot).to_have_class("msg bot")
    expect(bot.locator("button.chip").first).to_be_visible()
    expect(q).to_be_enabled()
    expect(q).to_have_value("")
    expect(page.locator(".msg.user")).to_have_text(["你: 为什么需要梯度检查点?"])


def test_chip_opens_passage_and_note_page(page: Page, live_server) -> None:
    page.goto(live_server.url + "/")
    ask(page, "为什么需要梯度检查点?").locator("button.chip").first.click()
    passage = page.locator("#passage")
    expect(passage.locator(".passage-title")).to_contain_text("梯度检查点")
    expect(passage.locator(".passage-text")).not_to_be_empty()
    link = passage.locator("a.passage-link")
    expect(link).to_have_attribute("href", "/posts/gradient-checkpointing-7d01ea")
    with page.context.expect_page() as opened:
        link.click()
    note = opened.value
    expect(note.locator("body.post-page main.note h1")).to_contain_text("梯度检查点")
    expect(note.locator("article p").first).not_to_be_empty()
    expect(note.locator(".related li a")).to_have_count(5)  # the nearest other notes, each a link
    expect(note.locator(".related li a[href='/posts/gradient-checkpointing-7d01ea']")).to_have_count(0)


def test_conversation_survives_reload(page: Page, live_server) -> None:
    page.goto(live_server.url + "/")
    answer = ask(page, "为什么需要梯度检查点?").locator(".answer").inner_text()
    page.reload()
    expect(page.locator(".msg.user")).to_have_text(["你: 为什么需要梯度检查点?"])
    expect(page.locator(".msg.bot .answer")).to_have_text([answer])
    expect(page.locator(".msg.bot button.chip").first).to_be_visible()


def test_off_topic_question_is_not_found(page: Page, live_server) -> None:
    page.goto(live_server.url + "/")
    bot = ask(page, "红烧肉怎么做?")
    expect(bot).to_have_class("msg bot not-found")
    expect(bot.locator("button.chip")).to_have_count(0)
    expect(page.locator("#sources .sources-list a")).to_have_count(0)


def test_follow_up_sends_history_and_finds_the_earlier_topic(page: Page, live_server) -> None:
    page.goto(live_server.url + "/")
    expect(page.locator("#status")).to_have_attribute("data-state", "online")
    with page.expect_request(lambda r: r.url.endswith("/ask") and r.method == "POST") as first:
        ask(page, "梯度检查点是什么?")
    assert first.value.post_data_json["history"] == []
    with page.expect_request(lambda r: r.url.endswith("/ask") and r.method == "POST") as second:
        bot = ask(page, "它的代价是什么?")
    body = second.value.post_data_json
    assert body["question"] == "它的代价是什么?"
    history = body["history"]
    assert history[0] == {"role": "user", "content": "梯度检查点是什么?"}
    assert [t["role"] for t in history] == ["user", "assistant"]
    assert history[1]["content"] and "[1]" not in history[1]["content"]
    expect(bot).to_have_class("msg bot")
    bot.locator("button.chip").first.click()
    expect(page.locator("#passage .passage-title")).to_contain_text("梯度检查点")


STREAMED = "梯度检查点用重新计算换显存，只保存一部分激活值。[1] 它会拖慢训练，因为反向传播时要再算一遍前向。[1]"
# Every piece of text the streaming bubble gets, recorded as it is added: deterministic whatever the chunking.
RECORD_STREAM = """() => {
  window.__streamed = [];
  window.__drafts = [];
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) {
      if (n.nodeType === 3 && n.parentElement && n.parentElement.closest('.msg.streaming')) window.__streamed.push(n.data);
      if (n.nodeType === 1 && n.matches('.msg.streaming')) window.__drafts.push(n.querySelector('.provisional').textContent);
    }
  }).observe(document.getElementById('messages'), { childList: true, subtree: true });
}"""


def test_llm_mode_streams_then_shows_the_validated_answer(page: Page, built, server_factory) -> None:
    from tests.fake_llm import FakeLLM

    fake = FakeLLM()
    try:
        fake.reply = STREAMED
        server = server_factory(built.index_dir, llm_base_url=fake.url, llm_model="m", llm_timeout=5.0)
        assert httpx.get(server.url + "/healthz").json()["mode"] == "llm"
        page.goto(server.url + "/")
        expect(page.locator("#status")).to_have_attribute("data-state", "online")
        page.evaluate(RECORD_STREAM)
        with page.expect_request(lambda r: r.url.endswith("/ask/stream")) as req:
            ask(page, "为什么需要梯度检查点?")
        assert req.value.method == "POST" and req.value.post_data_json["history"] == []
        bot = page.locator("#messages .msg.bot:not(.streaming)")
        expect(bot).to_have_count(1)
        expect(page.locator(".msg.streaming")).to_have_count(0)
        answer = bot.locator(".answer")
        expect(answer).to_contain_text("梯度检查点用重新计算换显存")
        expect(answer).to_contain_text("它会拖慢训练")
        expect(answer.locator("button.chip").first).to_have_attribute("data-n", "1")
        assert "[1]" not in bot.inner_text()
        expect(bot.locator(".meta")).to_contain_text("模型生成")
        expect(bot.locator(".warning")).to_have_count(0)
        # The raw model text was shown piece by piece before `done` replaced it, markers and all.
        streamed = page.evaluate("window.__streamed")
        assert len(streamed) > 3 and "".join(streamed) == STREAMED
        # ...under a label that says it is a draft until the citations are checked.
        assert page.evaluate("window.__drafts") == ["草稿：核对引用后会换成正式回答"]
        bot.locator("button.chip").first.click()
        expect(page.locator("#passage .passage-title")).to_contain_text("梯度检查点")
    finally:
        fake.close()


def test_llm_fallback_warning_and_broken_stream(page: Page, built, server_factory) -> None:
    from tests.fake_llm import FakeLLM

    fake = FakeLLM()
    try:
        fake.behaviour = "error500"
        server = server_factory(built.index_dir, llm_base_url=fake.url, llm_model="m", llm_timeout=5.0)
        page.goto(server.url + "/")
        expect(page.locator("#status")).to_have_attribute("data-state", "online")
        bot = ask(page, "为什么需要梯度检查点?")
        expect(bot).to_have_class("msg bot")
        expect(bot.locator(".warning")).to_contain_text("生成式回答暂不可用")
        expect(bot.locator(".warning")).to_have_attribute("title", re.compile("HTTP 500"))
        expect(bot.locator(".meta")).to_contain_text("摘录自笔记")
        page.reload()  # the warning is kept with the conversation
        expect(page.locator(".msg.bot .warning")).to_have_attribute("title", re.compile("HTTP 500"))

        # A stream that ends without its `done` event is an error, not a half answer.
        cut = 'event: token\ndata: {"text": "梯度检查点"}\n\nevent: token\ndata: {"text": "用重新计算"}\n\n'
        page.route("**/ask/stream", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=cut))
        error = ask(page, "DDP 是怎么同步梯度的?")
        expect(error).to_have_class("msg error")
        expect(error).to_contain_text("回答中途断开了")
        expect(page.locator(".msg.streaming")).to_have_count(0)
        expect(page.locator("textarea#question")).to_be_enabled()
        page.unroute("**/ask/stream")
        fake.behaviour = "normal"
        error.locator("button.retry").click()
        expect(page.locator("#messages .msg.error")).to_have_count(0)
        expect(page.locator("#messages .msg.bot:not(.streaming)")).to_have_count(2)
    finally:
        fake.close()


XSS_QUESTION = "转义测试笔记里的脚本标签是什么?"


def test_note_text_is_never_executed(page: Page, live_server, problems: list[str]) -> None:
    cited = httpx.post(live_server.url + "/ask", json={"question": XSS_QUESTION}, timeout=30).json()["citations"]
    assert "xss-note" in [c["post_id"] for c in cited], "the question no longer retrieves xss-note"
    n = next(c["n"] for c in cited if c["post_id"] == "xss-note")

    page.goto(live_server.url + "/")
    ask(page, XSS_QUESTION).locator(f'button.chip[data-n="{n}"]').first.click()
    passage = page.locator("#passage")
    expect(passage.locator(".passage-title")).to_contain_text("<script>alert('title')</script>")
    # Passages are plain text: a script's tags and content are gone; what is not a tag stays as written.
    expect(passage.locator(".passage-text")).to_contain_text("正文里有 这样的脚本标签")
    expect(passage.locator(".passage-text")).not_to_contain_text("alert('xss')")
    expect(passage.locator(".passage-text")).to_contain_text("<img src=x onerror=alert('img')>")
    expect(passage.locator("a.passage-source")).to_be_hidden()  # its url is javascript:
    expect(page.locator('img[src="x"], a[href^="javascript"]')).to_have_count(0)
    expect(page.locator("script")).to_have_count(1)  # only js/main.js, which imports the other modules

    page.goto(live_server.url + "/posts/xss-note")  # a navigation: Accept text/html
    expect(page.locator("main.note h1")).to_have_text("<script>alert('title')</script> 安全测试笔记")
    # The note page renders the Markdown, and shows raw HTML as text.
    expect(page.locator("main.note article")).to_contain_text("<script>alert('xss')</script>")
    expect(page.locator("main.note article")).to_contain_text("<img src=x onerror=alert('img')>")
    expect(page.locator("main.note article table strong")).to_have_text("加粗")
    expect(page.locator("main.note article a.image")).to_have_attribute("href", "https://example.com/remote.png")
    expect(page.locator('img, script, iframe, a[href^="javascript"], a[href^="data"]')).to_have_count(0)
    assert not problems


GC_URL = "/posts/gradient-checkpointing-7d01ea"
GC_TITLE = "梯度检查点(Gradient Checkpointing) 大模型的参数量巨大"


def test_export_downloads_the_conversation_as_markdown(page: Page, live_server) -> None:
    url = live_server.url
    page.goto(url + "/")
    expect(page.locator("#export")).to_be_disabled()
    ask(page, "为什么需要梯度检查点?")
    ask(page, "红烧肉怎么做?")
    ask(page, XSS_QUESTION)
    page.route("**/ask", lambda route: route.abort())  # an error turn is left out of the export
    ask(page, "DDP 是怎么同步梯度的?")
    with page.expect_download() as done:
        page.locator("#export").click()
    download = done.value
    assert re.fullmatch(r"notes-qa-\d{4}-\d{2}-\d{2}\.md", download.suggested_filename)
    text = Path(download.path()).read_text("utf-8")
    lines = text.splitlines()
    assert lines[:2] == ["# 笔记问答 · 对话记录", ""]
    assert re.fullmatch(rf"导出于 \d{{4}}-\d\d-\d\d \d\d:\d\d · <{re.escape(url)}/>", lines[2])
    assert [line for line in lines if line.startswith("## ")] == [
        "## 你: 为什么需要梯度检查点?", "## 你: 红烧肉怎么做?", f"## 你: {XSS_QUESTION}",
    ]
    first = lines[lines.index("## 你: 为什么需要梯度检查点?") + 2]
    # Markers link to the cited note; note text is escaped so that it stays text (batch_size, not italics).
    assert first.startswith("**笔记助手:** 梯度检查点(Gradient Checkpointing) 大模型的参数量巨大,即使将batch\\_size设置为1")
    assert f"[\\[1\\]]({url}{GC_URL})" in first
    assert f"1. [{GC_TITLE}]({url}{GC_URL}) · `gradient-checkpointing-7d01ea` · 2025-06-01" in lines
    assert "**笔记助手:** 我的笔记里没有涉及这个问题。" in lines
    assert "\\<script\\>alert('title')\\</script\\> 安全测试笔记" in text and "<script>" not in text
    assert "DDP" not in text and text.endswith("\n")


def test_thumbs_up_and_down_are_sent_as_feedback_and_remembered(page: Page, built, server_factory, tmp_path: Path) -> None:
    from app import feedback

    path = tmp_path / "feedback.jsonl"
    server = server_factory(built.index_dir, feedback_file=path)
    page.goto(server.url + "/")
    good = ask(page, "为什么需要梯度检查点?")
    good.get_by_role("button", name="有帮助").click()
    expect(good.locator(".feedback")).to_have_text("谢谢反馈")
    wrong = ask(page, "DDP 是怎么同步梯度的?")
    wrong.get_by_role("button", name="没帮助").click()
    expect(wrong.locator(".feedback button").last).to_have_text("其他问题")
    wrong.get_by_role("button", name="引用 [1] 不对").click()
    expect(wrong.locator(".feedback")).to_have_text("谢谢反馈")
    refused = ask(page, "红烧肉怎么做?")
    refused.get_by_role("button", name="没帮助").click()
    expect(refused.locator(".feedback button")).to_have_text(["笔记里其实有", "其他问题"])  # no citation to blame
    refused.get_by_role("button", name="笔记里其实有").click()
    expect(refused.locator(".feedback")).to_have_text("谢谢反馈")
    records = feedback.read(path)
    assert [(r["question"], r["verdict"], r.get("reason"), r.get("citation")) for r in records] == [
        ("为什么需要梯度检查点?", "up", None, None),
        ("DDP 是怎么同步梯度的?", "down", "wrong_citation", 1),
        ("红烧肉怎么做?", "down", "covered", None),
    ]
    assert records[0]["citations"][0] == {"n": 1, "post_id": "gradient-checkpointing-7d01ea", "title": GC_TITLE}
    assert records[2]["citations"] == [] and records[2]["answer"] == "我的笔记里没有涉及这个问题。"
    page.reload()  # a verdict given is remembered with the conversation
    expect(page.locator(".msg.bot .feedback")).to_have_text(["谢谢反馈"] * 3)


def test_tag_and_date_filters_limit_the_answer(page: Page, live_server) -> None:
    page.goto(live_server.url + "/")
    panel = page.locator("#filters")
    panel.locator("summary").click()
    expect(panel.locator(".tag span:not(.tag-n)")).to_have_text(
        ["ensemble", "trees", "deep-learning", "memory", "nlp", "Python", "test"]  # GET /tags, most used first
    )
    expect(panel.locator(".tag-n").first).to_have_text("2")
    panel.locator(".tag", has_text="trees").locator("input").check()
    panel.locator("input[name=since]").fill("2025-01-01")
    expect(panel.locator(".filters-label")).to_have_text("筛选 (2)")
    with page.expect_request(lambda r: r.url.endswith("/ask")) as sent:
        ask(page, "GBDT 和随机森林有什么区别?")
    assert sent.value.post_data_json["filters"] == {"tags": ["trees"], "since": "2025-01-01", "until": None}
    # Of the two tree posts only GBDT (2025-03-10) is dated after the start; random forests (2024-12-20) is not.
    expect(page.locator("#sources .sources-list a")).to_have_attribute("href", "/posts/gbdt-gradient-boosting-decision-1c038d")
    expect(page.locator(".msg.user .turn-filters")).to_have_text("仅限 trees · 2025-01-01 – …")
    panel.locator(".filters-reset").click()
    expect(panel.locator(".filters-label")).to_have_text("筛选")
    with page.expect_request(lambda r: r.url.endswith("/ask")) as sent:
        ask(page, "GBDT 和随机森林有什么区别?")
    assert "filters" not in sent.value.post_data_json


def test_server_down_shows_error(page: Page, built, server_factory) -> None:
    server = server_factory(built.index_dir)
    page.goto(server.url + "/")
    expect(page.locator("#status")).to_have_attribute("data-state", "online")
    server.stop()
    error = ask(page, "DDP 是怎么同步梯度的?")
    expect(error).to_have_class("msg error")
    expect(error).to_contain_text("连不上服务器")
    expect(page.locator("textarea#question")).to_be_enabled()
    expect(page.locator("#status")).to_have_attribute("data-state", "offline")


def test_with_an_api_key_the_page_asks_once_and_keeps_it_for_the_tab(page: Page, built, server_factory) -> None:
    server = server_factory(built.index_dir, api_key="page-key-123")
    page.goto(server.url + "/")
    expect(page.locator("#status")).to_have_attribute("data-state", "online")  # /healthz needs no key
    q = page.locator("textarea#question")
    q.fill("为什么需要梯度检查点?")
    q.press("Enter")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2")).to_have_text("这个服务需要访问密钥")
    page.locator("#key-input").fill("page-key-123")
    page.locator("#key-input").press("Enter")
    bot = page.locator("#messages .msg.bot")
    expect(bot).to_have_count(1)
    expect(bot.locator("button.chip").first).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('notes-qa-key')") == "page-key-123"
    assert page.evaluate("localStorage.getItem('notes-qa-key')") is None  # not kept past the tab

    page.reload()
    with page.expect_request(lambda r: r.url.endswith("/ask")) as sent:
        ask(page, "DDP 是怎么同步梯度的?")
    assert sent.value.headers["authorization"] == "Bearer page-key-123"
    expect(dialog).to_be_hidden()  # asked once
    # A note opened from the passage still arrives, though a plain navigation would carry no key.
    page.locator("#messages .msg.bot").last.locator("button.chip").first.click()
    with page.context.expect_page() as opened:
        page.locator("#passage a.passage-link").click()
    expect(opened.value.locator("main.note h1")).not_to_be_empty()


def test_a_wrong_key_is_an_error_and_cancelling_asks_nothing(page: Page, built, server_factory) -> None:
    server = server_factory(built.index_dir, api_key="page-key-123")
    page.goto(server.url + "/")
    expect(page.locator("#status")).to_have_attribute("data-state", "online")
    page.locator("textarea#question").fill("为什么需要梯度检查点?")
    page.locator("textarea#question").press("Enter")
    page.locator("#key-input").fill("wrong")
    page.locator("#key-input").press("Enter")
    expect(page.locator("#messages .msg.error")).to_contain_text("需要正确的访问密钥")
    page.locator("#messages .msg.error button.retry").click()
    page.locator("#key-cancel").click()
    expect(page.locator("#messages .msg.error")).to_contain_text("需要正确的访问密钥")
    expect(page.locator("textarea#question")).to_be_enabled()


def test_docs_render_from_this_server_only(page: Page, live_server) -> None:
    requests: list[str] = []
    console: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.goto(live_server.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Notes QA")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert requests and all(url.startswith(live_server.url) for url in requests), requests
    assert not [c for c in console if "Content Security Policy" in c], console


@pytest.mark.parametrize("name, width, height", [("screenshot.png", 1280, 800), ("screenshot-mobile.png", 375, 740)])
def test_screenshots(browser: Browser, problems: list[str], live_server, name: str, width: int, height: int) -> None:
    """A real conversation; written to docs/ only if missing or with UPDATE_SCREENSHOTS=1."""
    page = new_page(browser, problems, width, height)
    page.goto(live_server.url + "/")
    ask(page, "DDP 是怎么同步梯度的?")
    ask(page, "What does gradient checkpointing trade off?").locator("button.chip").first.click()
    expect(page.locator("#passage .passage-text")).not_to_be_empty()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "horizontal overflow"
    path = DOCS / name
    if os.environ.get("UPDATE_SCREENSHOTS") == "1" or not path.exists():
        DOCS.mkdir(exist_ok=True)
        page.evaluate("document.fonts.ready")
        page.screenshot(path=str(path), animations="disabled", caret="hide")
    page.context.close()
    assert not problems
