import pytest
from transformers import AutoConfig, CLIPVisionConfig, Dinov2Config, LlamaConfig, LlavaConfig, ViTConfig

from llava_vitsplit.model import LlavaViTSplitConfig
from llava_vitsplit.model.configuration import default_vitsplit_fields

from .tiny import TINY_TOWER

TEXT = LlamaConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def make(vision=None, **kwargs):
    return LlavaViTSplitConfig(vision_config=vision or Dinov2Config(**TINY_TOWER), text_config=TEXT, **kwargs)


def test_paper_variant_follows_the_tower_depth():
    config = make()
    split = config.split_config
    # LLaVA splits at the penultimate block (hs[-2]); the paper's prior reads the last block.
    assert (split.num_layers, split.resolved_split_point, split.num_task_layers) == (4, 3, 1)
    assert split.prior_block_ids == (3,)
    assert split.conv == "deformable" and split.resolved_fusion_width == 32  # tower width, then a linear
    assert split.apply_final_norm  # DINOv2 features are read after its final norm


def test_official_variant_is_the_authors_release_on_any_tower():
    config = make(CLIPVisionConfig(**TINY_TOWER, intermediate_size=64), vitsplit_variant="official")
    split = config.split_config
    assert split.prior_block_ids == (2,)  # hs[-2], LLaVA's feature layer
    assert split.task_input_index == 2  # hs[-3] through a copy of the penultimate block
    assert (split.conv, split.resolved_prior_width, split.resolved_fusion_width) == ("plain", 32, 48)
    assert not split.apply_final_norm and not split.task_head_prefix_tokens  # CLIP as LLaVA reads it


def test_split_hyper_parameters_are_configurable():
    fields = default_vitsplit_fields(
        "paper", num_layers=12, hidden_size=64, llm_width=96, family="dinov2",
        num_task_layers=3, num_prior_layers=4, prior_start_layer=2, split_point=11,
    )  # fmt: skip
    config = make(Dinov2Config(**{**TINY_TOWER, "num_hidden_layers": 12, "hidden_size": 64}), vitsplit=fields)
    assert config.split_config.prior_block_ids == (2, 5, 8, 11)  # eq. 2, as ADE20K-S
    assert config.split_config.task_input_index == 8
    official = default_vitsplit_fields("official", num_layers=12, hidden_size=64, llm_width=96, family="clip",
                                       num_prior_layers=2, prior_layer_ids=[9, 10])  # fmt: skip
    assert official["prior_width"] == 128  # K_p * D follows K_p


def test_bad_split_settings_name_the_field():
    with pytest.raises(ValueError, match="unknown ViT-Split field"):
        default_vitsplit_fields("paper", num_layers=4, hidden_size=32, llm_width=48, family="dinov2", num_blocks=2)
    with pytest.raises(ValueError, match="num_task_layers"):
        make(vitsplit={"num_task_layers": 9, "num_prior_layers": 1, "prior_start_layer": 3, "split_point": 3})
    with pytest.raises(ValueError, match="fusion_width must be 48"):
        make(vitsplit_variant="official", vitsplit={**make(vitsplit_variant="official").vitsplit, "fusion_width": 32})
    with pytest.raises(ValueError, match="only used with projector_type='vitsplit'"):
        make(projector_type="linear", vitsplit={"num_task_layers": 1})


def test_tower_and_feature_layer_are_checked():
    with pytest.raises(ValueError, match="has no ViT-Split adapter"):
        make(ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2))
    with pytest.raises(ValueError, match="vision_feature_layer"):
        make(projector_type="mlp2x_gelu", vision_feature_layer=-9)
    assert make(projector_type="mlp2x_gelu", vision_feature_layer=[-2, 1]).feature_hidden_state_indices == [3, 1]


def test_round_trip_and_auto_config(tmp_path):
    config = make(vitsplit_variant="official", image_token_id=7, image_seq_length=16, mm_vision_tower="/towers/x")
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, LlavaViTSplitConfig)
    assert loaded.split_config == config.split_config
    assert (loaded.image_token_id, loaded.image_seq_length, loaded.mm_vision_tower) == (7, 16, "/towers/x")


def test_a_llava_hf_config_reads_as_an_mlp_projector(tmp_path):
    LlavaConfig(vision_config=CLIPVisionConfig(**TINY_TOWER), text_config=TEXT, image_token_id=5).save_pretrained(tmp_path)
    config = LlavaViTSplitConfig.from_pretrained(tmp_path)
    assert (config.projector_type, config.image_token_id, config.vision_feature_layer) == ("mlp2x_gelu", 5, -2)
