#!/usr/bin/env python3
"""The ChatKit events chatkit-python's `stream_agent_response` makes of recorded OpenAI Responses
streams: the reference our own mapping is compared with, field by field, in
crates/support/tests/reasoning_reference.rs.

Usage: chatkit_reference.py STREAM.sse [STREAM.sse …]
Each file is one model response as the API streamed it (`event:`/`data:` lines); the files are the
consecutive model calls of one run. Prints one JSON event per line, serialized the way chatkit-python's
server writes them. Needs `openai-chatkit==1.6.5` (which brings the Agents SDK)."""
import asyncio
import json
import sys
from datetime import datetime

from agents.stream_events import RawResponsesStreamEvent
from chatkit.agents import AgentContext, stream_agent_response
from chatkit.store import Store
from chatkit.types import Page, ThreadMetadata
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter


class NoStore(Store):
    """A store for a thread with no earlier items; ids count up per type."""

    def __init__(self):
        self.count = 0

    def generate_item_id(self, item_type, thread, context):
        self.count += 1
        return f"{item_type}_{self.count}"

    async def load_thread_items(self, thread_id, after, limit, order, context):
        return Page(data=[], has_more=False, after=None)

    async def add_thread_item(self, thread_id, item, context):
        pass

    # Not reached by stream_agent_response.
    async def load_thread(self, thread_id, context): raise NotImplementedError
    async def save_thread(self, thread, context): raise NotImplementedError
    async def save_item(self, thread_id, item, context): raise NotImplementedError
    async def load_item(self, thread_id, item_id, context): raise NotImplementedError
    async def delete_thread(self, thread_id, context): raise NotImplementedError
    async def delete_thread_item(self, thread_id, item_id, context): raise NotImplementedError
    async def load_threads(self, limit, after, order, context): raise NotImplementedError
    async def save_attachment(self, attachment, context): raise NotImplementedError
    async def load_attachment(self, attachment_id, context): raise NotImplementedError
    async def delete_attachment(self, attachment_id, context): raise NotImplementedError


# The raw event types stream_agent_response reads; it ignores every other one (the lifecycle events,
# whose response objects newer `openai` releases may no longer read from older recordings).
READ = {
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.output_text.annotation.added",
    "response.output_item.added",
    "response.output_item.done",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
}


class Replay:
    """Stands in for the Agents SDK's streamed run: yields the recorded raw events."""

    def __init__(self, paths):
        self.paths = paths

    async def stream_events(self):
        adapter = TypeAdapter(ResponseStreamEvent)
        for path in self.paths:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if line.startswith("data: ") and json.loads(line[6:]).get("type") in READ:
                        yield RawResponsesStreamEvent(data=adapter.validate_json(line[6:]))


async def main(paths):
    store = NoStore()
    thread = ThreadMetadata(id="thr_reference", created_at=datetime.now())
    context = AgentContext(thread=thread, store=store, request_context=None)
    async for event in stream_agent_response(context, Replay(paths)):
        print(event.model_dump_json(by_alias=True, exclude_none=True, context={"exclude_metadata": True}))


asyncio.run(main(sys.argv[1:]))
