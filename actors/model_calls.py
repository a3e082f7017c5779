"""The model calls of a step: authorized first, tried on each model in order (primary, then
fallbacks), retried on transient errors, priced, and recorded as `model.called` at call time."""

from __future__ import annotations

import asyncio
import time

from actors._step_run import StepRun, call_usage
from actors.conversation import Conversation, estimate_tokens
from actors.execution import offered
from actors.profile import ModelChoice
from actors.providers.base import ModelReply, ModelRequest
from actors.providers.errors import PermanentModelError, TransientModelError
from podium.core import tracing
from podium.core.errors import PermanentError
from podium.core.pricing import price_call
from podium.core.retry import retry_transient
from topics.messages import Action, DecisionKind, ModelCalledData


async def model_call(run: StepRun, conv: Conversation) -> ModelReply:
    profile = run.profile
    tools = run.tool_specs(offered(profile.execution, profile.tools, conv.succeeded))
    estimate = estimate_tokens(conv.messages, profile.max_output_tokens)
    errors: list[str] = []
    call_number = run.model_calls
    for choice in profile.models:
        index = conv.call_index
        conv.call_index += 1
        decision = await run.authorize(
            action=Action.MODEL_CALL,
            model=choice.model,
            endpoint=choice.endpoint,
            estimated_tokens=estimate,
            step_number=conv.turns,
            call_index=index,
        )
        if decision.decision != DecisionKind.ALLOW:
            errors.append(
                f"model {choice.model} on {choice.endpoint} denied by policy "
                f"({decision.rule or 'policy'}): {decision.reason}"
            )
            continue
        request = ModelRequest(
            agent=profile.name,
            model=choice.model,
            messages=list(conv.messages),
            tools=tools,
            outcomes=list(profile.outcomes),
            max_output_tokens=profile.max_output_tokens,
            output_schema=profile.execution.output_schema,
            timeout_s=max(0.1, run.remaining()),
            call_number=call_number,
        )
        try:
            reply = await _complete(run, choice, request, decision.request_id, index)
        except (TransientModelError, PermanentModelError) as exc:
            errors.append(f"{choice.endpoint}/{choice.model}: {exc}")
            if isinstance(exc, TransientModelError) and choice is profile.models[-1]:
                raise
            continue
        run.model_calls += 1
        return reply
    raise PermanentError(f"{profile.name}: no model call succeeded: " + "; ".join(errors))


async def _complete(
    run: StepRun, choice: ModelChoice, request: ModelRequest, request_id: str, index: int
) -> ModelReply:
    started = time.monotonic()
    attrs: dict[str, tracing.AttributeValue | None] = {
        "gen_ai.system": choice.provider_name,
        "gen_ai.request.model": choice.model,
        "podium.endpoint": choice.endpoint,
        "podium.call_index": index,
    }
    async with tracing.span(f"model {choice.model}", attributes=attrs):
        try:
            reply = await retry_transient(
                lambda: choice.provider.complete(request),
                max_attempts=run.profile.model_attempts,
                base_delay_s=run.profile.model_backoff_s,
                max_delay_s=10.0,
                deadline=asyncio.get_running_loop().time() + run.remaining(),
            )
        except (TransientModelError, PermanentModelError) as exc:
            tracing.mark_error(str(exc))
            await run.usage.emit(
                run.step,
                ModelCalledData(
                    request_id=request_id,
                    provider=choice.provider_name,
                    endpoint=choice.endpoint,
                    model=choice.model,
                    latency_ms=(time.monotonic() - started) * 1000,
                    call_index=index,
                    status="error",
                    error=str(exc)[:500],
                ),
                agent=run.profile.name,
            )
            raise
        priced = price_call(
            choice.provider_name, reply.model or choice.model, reply.usage, choice.pricing
        )
        cost, source = priced.cost_usd, priced.source
        run.spent.append(call_usage(reply.usage.input_tokens + reply.usage.output_tokens, cost))
        tracing.annotate(
            **{
                "gen_ai.usage.input_tokens": reply.usage.input_tokens,
                "gen_ai.usage.output_tokens": reply.usage.output_tokens,
                "podium.cached_tokens": reply.usage.cached_tokens,
                "podium.cost_usd": cost,
            }
        )
    await run.usage.emit(
        run.step,
        ModelCalledData(
            request_id=request_id,
            provider=choice.provider_name,
            endpoint=choice.endpoint,
            model=reply.model or choice.model,
            input_tokens=reply.usage.input_tokens,
            output_tokens=reply.usage.output_tokens,
            cached_tokens=reply.usage.cached_tokens,
            latency_ms=(time.monotonic() - started) * 1000,
            cost_usd=cost,
            price_source=source,
            call_index=index,
        ),
        agent=run.profile.name,
    )
    return reply
