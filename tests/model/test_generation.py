"""Decoding settings are one transformers GenerationConfig for every front end."""

import pytest
from transformers import GenerationConfig

from llava_vitsplit.model.generation import decoding_config, sampling_temperature


def test_temperature_zero_is_greedy_and_above_zero_samples():
    greedy = decoding_config(max_new_tokens=8)
    assert isinstance(greedy, GenerationConfig)
    assert (greedy.do_sample, greedy.temperature, greedy.stop_strings, sampling_temperature(greedy)) == (False, None, None, 0.0)
    sampled = decoding_config(max_new_tokens=8, temperature=0.7, top_p=0.9, stop_strings=["\n\n"])
    assert (sampled.do_sample, sampled.temperature, sampled.top_p, sampled.stop_strings) == (True, 0.7, 0.9, ["\n\n"])
    assert sampling_temperature(sampled) == 0.7


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(max_new_tokens=2.5), "max_new_tokens must be >= 1"),
        (dict(max_new_tokens=4, temperature=-0.1), "temperature must be >= 0"),
        (dict(max_new_tokens=4, top_p=1.5), r"top_p must be in \(0, 1\]"),
        (dict(max_new_tokens=4, num_beams=0), "num_beams must be >= 1"),
        (dict(max_new_tokens=4, stop_strings="###"), "stop_strings must be a sequence"),
    ],
)
def test_bad_settings_name_the_setting(settings, message):
    with pytest.raises(ValueError, match=message):
        decoding_config(**settings)
