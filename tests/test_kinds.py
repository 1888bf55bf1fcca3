"""Every registered kind's Task carries the defaults the core asks for instead of naming kinds."""

from __future__ import annotations

from raylight.core.registry import algorithm_names, get_algorithm


def test_every_task_declares_its_defaults() -> None:
    tasks = {get_algorithm(name).task.kind: get_algorithm(name).task for name in algorithm_names()}
    for kind, task in tasks.items():
        assert isinstance(task.sweep_metric, str) and task.sweep_metric, kind
        assert task.torch_threads is None or task.torch_threads >= 1, kind
    assert tasks["rl"].torch_threads == 1 and tasks["rl"].sweep_metric == "best_eval_return_mean"
    assert tasks["rl"].best_metric is not None and tasks["rl"].best_metric.key == "eval_return_mean"
    assert tasks["pretrain"].sweep_metric == "probe_accuracy" and tasks["finetune"].sweep_metric == "test_accuracy"
    assert tasks["text-finetune"].sweep_metric == "test_accuracy"
