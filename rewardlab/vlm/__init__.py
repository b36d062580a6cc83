"""Vision-language rewards: CLIP scores of rendered frames against a sentence (VLM-RM).

``CLIPReward`` is a ``RewardFn`` over observations: it renders the frame of each next
observation (``frame_source``: one private renderer per env, reused; image observations are
their own frames), embeds the batch with a CLIP image tower and scores it with the
goal-baseline reward R = 1 − ½‖(x̂ − g)P‖², P = α·ddᵀ/‖d‖² + (1 − α)I, d = g − b
(``goal_baseline``). ``load_clip`` reads any CLIP checkpoint in the Hugging Face format (and
open_clip models where open_clip is installed) without downloading; ``train_clip`` makes a
small one from an environment's frames and captions of its states. ``RolloutRelabelCallback``
scores a whole PPO rollout in one batch at its end.

The models are torch modules; ``transformers`` comes with the ``vlm`` extra
(``pip install -c constraints.txt 'rewardlab[vlm]'``).
"""

from rewardlab.vlm._clip import (
    CLIP_IMAGE_MEAN,
    CLIP_IMAGE_STD,
    ClipEmbedder,
    VLMError,
    from_transformers,
    load_clip,
)
from rewardlab.vlm._frames import FrameSource, ImageObsFrames, ParallelFrames, StateFrames, frame_source
from rewardlab.vlm._projection import GoalBaseline, goal_baseline, goal_baseline_reward, unit_rows
from rewardlab.vlm._relabel import RolloutRelabelCallback
from rewardlab.vlm._reward import CLIPReward
from rewardlab.vlm._training import (
    CAPTIONERS,
    TASK_PROMPTS,
    ClipTrainConfig,
    ClipTrainResult,
    build_clip,
    build_tokenizer,
    caption_observations,
    contrastive_loss,
    env_name,
    read_metadata,
    sample_observations,
    save_clip,
    train_clip,
)

__all__ = [
    "CAPTIONERS",
    "CLIP_IMAGE_MEAN",
    "CLIP_IMAGE_STD",
    "CLIPReward",
    "ClipEmbedder",
    "ClipTrainConfig",
    "ClipTrainResult",
    "FrameSource",
    "GoalBaseline",
    "ImageObsFrames",
    "ParallelFrames",
    "RolloutRelabelCallback",
    "StateFrames",
    "TASK_PROMPTS",
    "VLMError",
    "build_clip",
    "build_tokenizer",
    "caption_observations",
    "contrastive_loss",
    "env_name",
    "frame_source",
    "from_transformers",
    "goal_baseline",
    "goal_baseline_reward",
    "load_clip",
    "read_metadata",
    "sample_observations",
    "save_clip",
    "train_clip",
    "unit_rows",
]
