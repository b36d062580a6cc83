"""Language-model tools: a chat client, a local server, the reward-code contract and a sandbox."""

from rewardlab.llm._cache import ChatCache, request_key
from rewardlab.llm._client import (
    API_KEY_ENV,
    BASE_URL_ENV,
    CACHE_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    MODEL_ENV,
    ChatClient,
    ChatReply,
    ChatUsage,
)
from rewardlab.llm._code_reward import CODE_REWARD_FORMAT, CodeReward, load_code_reward
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
    reward_messages,
)
from rewardlab.llm._errors import CodeError, EndpointUnreachableError, LLMError, RewardCodeError
from rewardlab.llm._prompts import describe_env, describe_space, env_source, error_feedback, reward_reflection
from rewardlab.llm._sandbox import RewardOutput, Sandbox, SandboxLimits
from rewardlab.llm._server import LocalServer, default_model_path

__all__ = [
    "CODE_REWARD_FORMAT",
    "CodeReward",
    "load_code_reward",
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "CACHE_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "MODEL_ENV",
    "ChatCache",
    "ChatClient",
    "ChatReply",
    "ChatUsage",
    "LocalServer",
    "default_model_path",
    "describe_env",
    "describe_space",
    "env_source",
    "error_feedback",
    "reward_reflection",
    "request_key",
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
    "reward_messages",
]
