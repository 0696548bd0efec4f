"""The API server's scheduler in-process: a model failure reaches that batch's requests only."""

from __future__ import annotations

import queue

from transformers import GenerationConfig

from llava_vitsplit.serve.api.scheduler import BatchScheduler, Delta, Failed, Finished, GenerationJob


def _job(engine, events: queue.Queue) -> GenerationJob:
    inputs = engine.processor(text="USER: Hello ASSISTANT:", return_tensors="pt")
    return GenerationJob(inputs["input_ids"][0], None, GenerationConfig(do_sample=False, max_new_tokens=4),
                         events.put)


def _events(events: queue.Queue) -> list:
    received = [events.get(timeout=60)]
    while not isinstance(received[-1], (Finished, Failed)):
        received.append(events.get(timeout=60))
    return received


def test_a_failure_inside_generate_answers_its_batch_and_the_next_batch_runs(engine, monkeypatch):
    scheduler = BatchScheduler(engine.model, engine.tokenizer, max_batch_size=2, max_queue=4)
    original = engine.model.generate
    calls = []

    def failing_once(**kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        if len(calls) == 1:
            raise RuntimeError("out of memory (simulated)")
        return original(**kwargs)

    monkeypatch.setattr(engine.model, "generate", failing_once)
    first, second = queue.Queue(), queue.Queue()
    scheduler.start()
    try:
        scheduler.submit(_job(engine, first))
        (failed,) = _events(first)
        assert isinstance(failed, Failed) and "simulated" in str(failed.error)
        scheduler.submit(_job(engine, second))
        answered = _events(second)
    finally:
        scheduler.close()
    assert isinstance(answered[-1], Finished) and answered[-1].reason in ("stop", "length")
    assert all(isinstance(event, Delta) for event in answered[:-1]) and calls == [1, 1]
