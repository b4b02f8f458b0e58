"""Make a follow-up question standalone: (question, history) -> the question to retrieve with.

"那它和 GBDT 有什么区别?" after "随机森林是怎么构建的?" is rewritten by the model when one is
configured, otherwise by carrying the previous question's key terms: "随机森林 那它和 GBDT 有什么区别?".
"""
from __future__ import annotations

import re

from app.llm import ChatClient, LLMError
from app.retrieve import Retriever
from ingest.segment import segment

KEY_TERMS = 3
# Words that point back at something said before.
_REFERS_BACK = re.compile(
    r"它|它们|他们|她们|这个|那个|这种|那种|这些|那些|该方法|该模型|其中|前者|后者|上面|刚才|^那|^那么|^还有|^以及|^和|^跟"
    r"|\b(it|its|they|them|their|this|that|these|those|the former|the latter)\b|^(and|what about|how about)\b",
    re.I,
)
REWRITE = """Rewrite the user's last question as one standalone question that can be understood without the conversation, in the same language as that question. Keep technical terms as they are. Reply with the question only."""


def refers_back(question: str) -> bool:
    return bool(_REFERS_BACK.search(question.strip())) or len(segment(question)) <= 1


def by_rule(question: str, history: list[dict], retriever: Retriever) -> str:
    """Prefix the rarest known terms of the previous user question that this one lacks."""
    previous = next((t["content"] for t in reversed(history) if t["role"] == "user"), "")
    if not previous or not refers_back(question):
        return question
    terms = retriever.index.bm25.terms
    here = set(segment(question))
    candidates = [t for t in dict.fromkeys(segment(previous)) if t in terms and t not in here]
    # Search mode also yields the parts of a compound (梯度, 检查点 beside 梯度检查点): keep the whole.
    candidates = [t for t in candidates if not any(t != o and t in o for o in candidates)]
    weight = retriever.weights(candidates)
    keep = set(sorted(candidates, key=lambda t: -weight[t])[:KEY_TERMS])
    key = [t for t in candidates if t in keep]
    return f"{' '.join(key)} {question}" if key else question


async def standalone(question: str, history: list[dict], retriever: Retriever, llm: ChatClient | None) -> str:
    if not history:
        return question
    if llm is not None:
        turns = [{"role": t["role"], "content": t["content"][:1000]} for t in history[-6:]]
        try:
            rewritten = await llm.complete([{"role": "system", "content": REWRITE}, *turns, {"role": "user", "content": question}])
        except LLMError:
            return by_rule(question, history, retriever)
        rewritten = rewritten.strip().strip('"“”')
        # A model that hands the question back unchanged has not resolved what it refers to.
        if 0 < len(rewritten) <= 2000 and rewritten != question.strip():
            return rewritten
    return by_rule(question, history, retriever)
