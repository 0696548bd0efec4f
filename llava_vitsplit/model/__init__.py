"""The LLaVA side: config, model, projectors, processor, loading and conversion.

Importing this package registers the classes with transformers' Auto classes
(``AutoConfig``, ``AutoModel``, ``AutoModelForImageTextToText``, ``AutoProcessor``).
"""

from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor

from .configuration import LlavaViTSplitConfig
from .modeling import LlavaViTSplitForConditionalGeneration, LlavaViTSplitModel, LlavaViTSplitPreTrainedModel
from .processing import LlavaViTSplitProcessor

AutoConfig.register(LlavaViTSplitConfig.model_type, LlavaViTSplitConfig, exist_ok=True)
AutoModel.register(LlavaViTSplitConfig, LlavaViTSplitModel, exist_ok=True)
AutoModelForImageTextToText.register(LlavaViTSplitConfig, LlavaViTSplitForConditionalGeneration, exist_ok=True)
AutoProcessor.register(LlavaViTSplitConfig, LlavaViTSplitProcessor, exist_ok=True)

__all__ = [
    "LlavaViTSplitConfig",
    "LlavaViTSplitForConditionalGeneration",
    "LlavaViTSplitModel",
    "LlavaViTSplitPreTrainedModel",
    "LlavaViTSplitProcessor",
]
