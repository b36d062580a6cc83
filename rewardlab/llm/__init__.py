"""Language-model tools: a chat client, a local server, the reward-code contract and a sandbox."""

from rewardlab.llm._contract import (
    ALLOWED_IMPORTS,
    REPLY_SCHEMA,
    REWARD_ARGUMENTS,
    REWARD_FUNCTION_NAME,
    check_reward_code,
    checked_code,
    contract_text,
    extract_code,
    reply_schema,
)
from rewardlab.llm._errors import CodeError, EndpointUnreachableError, LLMError, RewardCodeError
from rewardlab.llm._sandbox import RewardOutput, Sandbox, SandboxLimits

__all__ = [
    "ALLOWED_IMPORTS",
    "REPLY_SCHEMA",
    "REWARD_ARGUMENTS",
    "REWARD_FUNCTION_NAME",
    "CodeError",
    "EndpointUnreachableError",
    "LLMError",
    "RewardCodeError",
    "RewardOutput",
    "Sandbox",
    "SandboxLimits",
    "check_reward_code",
    "checked_code",
    "contract_text",
    "extract_code",
    "reply_schema",
]
