"""Multi-task prompt pre-training with nested prompts (every leading slice is a usable prompt).

``pretrain`` trains one shared deep prompt of ``max_prompt_len`` positions with a head per task;
``init_from_pretrained`` starts a single-task prompt from its first L positions;
``load_pretrained`` / ``evaluate_pretrained`` score every pre-training task at every length.
"""
from ptv2_core.multitask.evaluate import LoadedPretrained, evaluate_pretrained, load_pretrained, parse_lengths
from ptv2_core.multitask.init import check_init, init_from_pretrained
from ptv2_core.multitask.mixing import TaskMixer, mixing_weights
from ptv2_core.multitask.model import MultiTaskPromptModel
from ptv2_core.multitask.pretrain import PretrainResult, pretrain
from ptv2_core.multitask.pretrained import PretrainConfig, default_lengths, read_pretrained_config

__all__ = [
    "LoadedPretrained", "MultiTaskPromptModel", "PretrainConfig", "PretrainResult", "TaskMixer",
    "check_init", "default_lengths", "evaluate_pretrained", "init_from_pretrained", "load_pretrained", "mixing_weights", "parse_lengths",
    "pretrain", "read_pretrained_config",
]
