"""PyTorch: vocabulary-scale losses, models, tasks, rollouts, teachers and trainers (`lm` extra).

The only subpackage that imports torch.
"""
